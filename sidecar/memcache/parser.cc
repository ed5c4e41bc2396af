#include "sidecar/memcache/parser.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "shared/cluster_config.h"

namespace cb::memcache {
namespace {

constexpr std::string_view kError = "ERROR\r\n";
constexpr std::string_view kBadFormat = "CLIENT_ERROR bad command line format\r\n";
constexpr std::string_view kBadDataChunk = "CLIENT_ERROR bad data chunk\r\n";
constexpr std::string_view kLineTooLong = "CLIENT_ERROR line too long\r\n";
constexpr std::string_view kInvalidExptime = "CLIENT_ERROR invalid exptime argument\r\n";
constexpr std::string_view kInvalidDelta = "CLIENT_ERROR invalid numeric delta argument\r\n";
constexpr std::string_view kBadDelete =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
constexpr std::string_view kNoreply = "noreply";

// memcached's tokenizer: runs of spaces separate tokens; nothing else does.
std::vector<std::string_view> Tokenize(std::string_view line) {
  std::vector<std::string_view> tokens;
  std::size_t pos = 0;
  while (pos < line.size()) {
    if (line[pos] == ' ') {
      ++pos;
      continue;
    }
    const std::size_t end = std::min(line.find(' ', pos), line.size());
    tokens.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  return tokens;
}

bool IsValidKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxKeyBytes) return false;
  return std::none_of(key.begin(), key.end(), [](char c) {
    const auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// A decimal number: an optional '+', then digits only, at most `max`.
bool ParseUnsigned(std::string_view token, uint64_t max, uint64_t& out) {
  if (!token.empty() && token.front() == '+') token.remove_prefix(1);
  if (token.empty()) return false;
  uint64_t value = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return false;
    const auto digit = static_cast<uint64_t>(c - '0');
    if (value > (max - digit) / 10) return false;
    value = value * 10 + digit;
  }
  out = value;
  return true;
}

// A decimal number with an optional sign, within int64_t.
bool ParseSigned(std::string_view token, int64_t& out) {
  bool negative = false;
  if (!token.empty() && (token.front() == '-' || token.front() == '+')) {
    negative = token.front() == '-';
    token.remove_prefix(1);
    if (!token.empty() && (token.front() == '-' || token.front() == '+')) return false;
  }
  const uint64_t max_magnitude =
      negative ? uint64_t{1} << 63 : static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t magnitude = 0;
  if (!ParseUnsigned(token, max_magnitude, magnitude)) return false;
  out = negative ? static_cast<int64_t>(~magnitude + 1) : static_cast<int64_t>(magnitude);
  return true;
}

bool ParseU32(std::string_view token, uint32_t& out) {
  uint64_t value = 0;
  if (!ParseUnsigned(token, std::numeric_limits<uint32_t>::max(), value)) return false;
  out = static_cast<uint32_t>(value);
  return true;
}

bool IsStorage(Command command) {
  switch (command) {
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      return true;
    default:
      return false;
  }
}

struct NamedCommand {
  std::string_view name;
  Command command;
};

constexpr NamedCommand kCommands[] = {
    {"get", Command::kGet},
    {"gets", Command::kGets},
    {"gat", Command::kGat},
    {"gats", Command::kGats},
    {"set", Command::kSet},
    {"add", Command::kAdd},
    {"replace", Command::kReplace},
    {"append", Command::kAppend},
    {"prepend", Command::kPrepend},
    {"cas", Command::kCas},
    {"delete", Command::kDelete},
    {"touch", Command::kTouch},
    {"incr", Command::kIncr},
    {"decr", Command::kDecr},
    {"flush_all", Command::kFlushAll},
    {"version", Command::kVersion},
    {"stats", Command::kStats},
    {"verbosity", Command::kVerbosity},
    {"quit", Command::kQuit},
};

std::optional<Command> FindCommand(std::string_view name) {
  for (const NamedCommand& entry : kCommands) {
    if (entry.name == name) return entry.command;
  }
  return std::nullopt;
}

// A get, gets, gat or gats line: its command, and where the name ends.
struct RetrievalHead {
  Command command;
  std::size_t name_end;
};

// The retrieval command `line` starts with (leading spaces are skipped, as
// memcached's tokenizer does), if any. `whole`: `line` is a whole line, so the
// name may end with it; otherwise a name that reaches the end may go on.
std::optional<RetrievalHead> RetrievalHeadOf(std::string_view line, bool whole) {
  const std::size_t start = line.find_first_not_of(' ');
  if (start == std::string_view::npos) return std::nullopt;
  std::size_t end = line.find(' ', start);
  if (end == std::string_view::npos) {
    if (!whole) return std::nullopt;
    end = line.size();
  }
  const std::optional<Command> command = FindCommand(line.substr(start, end - start));
  if (!command || !IsRetrieval(*command)) return std::nullopt;
  return RetrievalHead{*command, end};
}

ProtocolError Reply(std::string_view line, bool noreply) {
  return ProtocolError{noreply ? std::string() : std::string(line), false};
}

}  // namespace

std::string_view CommandName(Command command) {
  for (const NamedCommand& entry : kCommands) {
    if (entry.command == command) return entry.name;
  }
  return "?";
}

std::size_t BufferBound(const ParserLimits& limits) {
  const std::size_t keys = std::max<std::size_t>(limits.max_keys_per_request, 1);
  return std::max({limits.max_line_bytes + 1, limits.max_value_bytes + 2,
                   keys * kMaxKeyBytes + kMaxKeyBytes + 2});
}

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
  limits_.max_retrieval_line_bytes =
      std::max(limits_.max_retrieval_line_bytes, limits_.max_line_bytes);
  limits_.max_keys_per_request = std::max<std::size_t>(limits_.max_keys_per_request, 1);
}

std::size_t RequestParser::buffered_bytes() const {
  std::size_t bytes = line_.size() + pending_.data.size() + keys_.token.size();
  for (const std::string& key : keys_.request.keys) bytes += key.size();
  return bytes;
}

void RequestParser::Fail(std::string reply, std::vector<ParseResult>& out) {
  out.emplace_back(ProtocolError{std::move(reply), true});
  state_ = State::kClosed;  // Feed lets go of the buffers
}

std::vector<ParseResult> RequestParser::Feed(std::string_view bytes) {
  std::vector<ParseResult> out;
  while (!bytes.empty() && state_ != State::kClosed) {
    switch (state_) {
      case State::kLine: {
        const std::size_t newline = bytes.find('\n');
        const std::size_t before_newline = std::min(newline, bytes.size());
        // A line is buffered up to the longest one and its "\r"; with one more
        // byte it is too long, unless it is a retrieval line, streamed instead.
        const std::size_t room = limits_.max_line_bytes + 2 - line_.size();
        if (before_newline >= room) {
          line_.append(bytes.substr(0, room));
          bytes.remove_prefix(room);
          BeginLongLine(out);
          break;
        }
        if (newline == std::string_view::npos) {
          line_.append(bytes);
          bytes = {};
          break;
        }
        std::size_t length = line_.size() + newline;
        const bool has_cr = newline > 0 ? bytes[newline - 1] == '\r' : line_.ends_with('\r');
        if (has_cr) --length;
        if (length > limits_.max_line_bytes) {  // by one byte, a "\r" that is not the line's end
          std::string head = line_ + std::string(bytes.substr(0, newline));
          if (!RetrievalHeadOf(head, false) || length > limits_.max_retrieval_line_bytes) {
            Fail(std::string(kLineTooLong), out);
            break;
          }
        }
        std::string_view line;
        if (line_.empty()) {
          line = bytes.substr(0, length);
        } else {
          line_.append(bytes.substr(0, newline));
          line = std::string_view(line_).substr(0, length);
        }
        bytes.remove_prefix(newline + 1);
        ParseLine(line, out);
        line_.clear();
        break;
      }
      case State::kKeys: {
        const std::size_t newline = bytes.find('\n');
        StreamKeys(bytes.substr(0, std::min(newline, bytes.size())), out);
        if (newline == std::string_view::npos || state_ != State::kKeys) {
          bytes = {};
          break;
        }
        bytes.remove_prefix(newline + 1);
        EndKeys(keys_.last_was_cr, out);
        break;
      }
      case State::kData: {
        const auto take = static_cast<std::size_t>(std::min<uint64_t>(remaining_, bytes.size()));
        pending_.data.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) FinishData(out);
        break;
      }
      case State::kSwallow: {
        const auto take = static_cast<std::size_t>(std::min<uint64_t>(remaining_, bytes.size()));
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) FinishSwallow(out);
        break;
      }
      case State::kClosed:
        break;
    }
  }
  if (state_ == State::kClosed) {
    line_ = std::string();
    keys_ = KeyStream();
    pending_ = Request();
    swallowed_error_.reset();
  }
  return out;
}

void RequestParser::BeginLongLine(std::vector<ParseResult>& out) {
  // Decided on the first max_line_bytes + 1 bytes only, which every split of the
  // stream has seen by the time the line is known to be that long.
  const std::optional<RetrievalHead> retrieval =
      RetrievalHeadOf(std::string_view(line_).substr(0, limits_.max_line_bytes + 1), false);
  if (!retrieval) {
    Fail(std::string(kLineTooLong), out);
    return;
  }
  BeginKeys(retrieval->command, retrieval->name_end);
  const std::string buffered = std::move(line_);
  line_.clear();
  state_ = State::kKeys;
  StreamKeys(std::string_view(buffered).substr(retrieval->name_end), out);
}

void RequestParser::BeginKeys(Command command, std::size_t head_bytes) {
  keys_ = KeyStream();
  keys_.request.command = command;
  keys_.line_bytes = head_bytes;
  keys_.expects_exptime = command == Command::kGat || command == Command::kGats;
}

void RequestParser::StreamKeys(std::string_view bytes, std::vector<ParseResult>& out) {
  // The line may have max_retrieval_line_bytes and its "\r": the byte after
  // those is too many, whatever follows.
  const std::size_t allowed = limits_.max_retrieval_line_bytes + 1 - keys_.line_bytes;
  const bool too_long = bytes.size() > allowed;
  if (too_long) bytes = bytes.substr(0, allowed);
  keys_.line_bytes += bytes.size();
  if (!bytes.empty()) keys_.last_was_cr = bytes.back() == '\r';
  std::size_t pos = 0;
  while (pos < bytes.size() && !keys_.failed) {
    if (bytes[pos] == ' ') {
      EndToken(out);
      ++pos;
      continue;
    }
    const std::size_t end = std::min(bytes.find(' ', pos), bytes.size());
    const std::size_t keep = kMaxKeyBytes + 2;  // a longest key, its "\r", and one more
    const std::size_t take = std::min(end - pos, keep - std::min(keep, keys_.token.size()));
    keys_.token.append(bytes.substr(pos, take));
    if (take < end - pos) keys_.token_too_long = true;
    pos = end;
  }
  if (too_long) FailLongKeyLine(out);
}

void RequestParser::FailLongKeyLine(std::vector<ParseResult>& out) {
  // After the line's error was answered, a second error line would be read as the
  // answer to the client's next command: close silently (as memcached does).
  Fail(keys_.failed ? std::string() : std::string(kLineTooLong), out);
}

void RequestParser::EndToken(std::vector<ParseResult>& out) {
  if (keys_.token.empty()) return;
  std::string token = std::move(keys_.token);
  keys_.token.clear();
  const bool too_long = keys_.token_too_long;
  keys_.token_too_long = false;
  if (keys_.failed) return;
  auto fail = [&](std::string_view reply) {
    out.emplace_back(ProtocolError{std::string(reply), false});
    keys_.failed = true;
    keys_.request.keys.clear();
  };
  if (keys_.expects_exptime) {
    keys_.expects_exptime = false;
    if (too_long || !ParseSigned(token, keys_.request.exptime)) fail(kInvalidExptime);
    return;
  }
  if (too_long || !IsValidKey(token)) {
    fail(kBadFormat);
    return;
  }
  if (keys_.request.keys.size() == limits_.max_keys_per_request) {
    Request full = std::move(keys_.request);
    keys_.request = Request();
    keys_.request.command = full.command;
    keys_.request.exptime = full.exptime;
    full.more_keys = true;
    out.emplace_back(std::move(full));
  }
  keys_.request.keys.push_back(std::move(token));
  keys_.has_keys = true;
}

void RequestParser::EndKeys(bool has_cr, std::vector<ParseResult>& out) {
  if (keys_.line_bytes - (has_cr ? 1 : 0) > limits_.max_retrieval_line_bytes) {
    FailLongKeyLine(out);
    return;
  }
  if (has_cr && !keys_.token_too_long && !keys_.token.empty()) keys_.token.pop_back();
  EndToken(out);
  if (!keys_.failed) {
    const bool is_gat =
        keys_.request.command == Command::kGat || keys_.request.command == Command::kGats;
    if (keys_.expects_exptime || (!is_gat && !keys_.has_keys)) {
      out.emplace_back(ProtocolError{std::string(kError), false});
    } else {
      out.emplace_back(std::move(keys_.request));
    }
  }
  keys_ = KeyStream();
  state_ = State::kLine;
}

void RequestParser::FinishData(std::vector<ParseResult>& out) {
  if (!pending_.data.ends_with("\r\n")) {
    Fail(std::string(kBadDataChunk), out);
    return;
  }
  pending_.data.resize(pending_.data.size() - 2);
  out.emplace_back(std::move(pending_));
  pending_ = Request();
  state_ = State::kLine;
}

void RequestParser::FinishSwallow(std::vector<ParseResult>& out) {
  if (swallowed_error_) {
    out.emplace_back(std::move(*swallowed_error_));
    swallowed_error_.reset();
  } else {
    out.emplace_back(std::move(pending_));
  }
  pending_ = Request();
  state_ = State::kLine;
}

void RequestParser::ParseStorage(Command command, const std::vector<std::string_view>& tokens,
                                 std::vector<ParseResult>& out) {
  // <cmd> <key> <flags> <exptime> <bytes> [<cas unique>] [noreply]
  const std::size_t base = command == Command::kCas ? 6 : 5;
  if (tokens.size() != base && tokens.size() != base + 1) {
    // Where the data block ends is unknown, so the stream cannot be followed.
    Fail(std::string(kError), out);
    return;
  }
  uint64_t bytes = 0;
  if (!ParseUnsigned(tokens[4], kMaxDeclaredBytes, bytes)) {
    Fail(std::string(kBadFormat), out);
    return;
  }
  Request request;
  request.command = command;
  request.noreply = tokens.back() == kNoreply;
  request.bytes = bytes;
  remaining_ = bytes + 2;
  if (!IsValidKey(tokens[1]) || !ParseU32(tokens[2], request.flags) ||
      !ParseSigned(tokens[3], request.exptime) ||
      (command == Command::kCas &&
       !ParseUnsigned(tokens[5], std::numeric_limits<uint64_t>::max(), request.cas_unique))) {
    swallowed_error_ = Reply(kBadFormat, request.noreply);
    state_ = State::kSwallow;
    return;
  }
  request.keys.emplace_back(tokens[1]);
  pending_ = std::move(request);
  if (bytes > limits_.max_value_bytes) {
    pending_.value_too_large = true;
    state_ = State::kSwallow;
    return;
  }
  state_ = State::kData;
}

void RequestParser::ParseLine(std::string_view line, std::vector<ParseResult>& out) {
  if (const std::optional<RetrievalHead> retrieval = RetrievalHeadOf(line, true)) {
    BeginKeys(retrieval->command, retrieval->name_end);
    StreamKeys(line.substr(retrieval->name_end), out);
    EndKeys(false, out);
    return;
  }
  const std::vector<std::string_view> tokens = Tokenize(line);
  const std::optional<Command> found = tokens.empty() ? std::nullopt : FindCommand(tokens.front());
  if (!found) {
    if (!tokens.empty() && tokens.back().starts_with("HTTP/")) {
      Fail(std::string(), out);
    } else {
      out.emplace_back(ProtocolError{std::string(kError), false});
    }
    return;
  }
  const Command command = *found;
  if (IsStorage(command)) {
    ParseStorage(command, tokens, out);
    return;
  }
  const std::size_t count = tokens.size();
  const bool last_is_noreply = count > 1 && tokens.back() == kNoreply;
  Request request;
  request.command = command;
  auto error = [&](std::string_view reply, bool noreply) {
    out.emplace_back(Reply(reply, noreply));
  };

  switch (command) {
    case Command::kDelete: {
      // delete <key> [0] [noreply]
      if (count < 2 || count > 4) return error(kError, false);
      request.noreply = last_is_noreply;
      if (count > 2) {
        const bool hold_is_zero = tokens[2] == "0";
        const bool valid = (count == 3 && (hold_is_zero || request.noreply)) ||
                           (count == 4 && hold_is_zero && request.noreply);
        if (!valid) return error(kBadDelete, request.noreply);
      }
      if (!IsValidKey(tokens[1])) return error(kBadFormat, request.noreply);
      request.keys.emplace_back(tokens[1]);
      break;
    }
    case Command::kIncr:
    case Command::kDecr: {
      // incr <key> <delta> [noreply]
      if (count != 3 && count != 4) return error(kError, false);
      request.noreply = last_is_noreply;
      if (!IsValidKey(tokens[1])) return error(kBadFormat, request.noreply);
      if (!ParseUnsigned(tokens[2], std::numeric_limits<uint64_t>::max(), request.delta)) {
        return error(kInvalidDelta, request.noreply);
      }
      request.keys.emplace_back(tokens[1]);
      break;
    }
    case Command::kTouch: {
      // touch <key> <exptime> [noreply]
      if (count != 3 && count != 4) return error(kError, false);
      request.noreply = last_is_noreply;
      if (!IsValidKey(tokens[1])) return error(kBadFormat, request.noreply);
      if (!ParseSigned(tokens[2], request.exptime)) return error(kInvalidExptime, request.noreply);
      request.keys.emplace_back(tokens[1]);
      break;
    }
    case Command::kFlushAll: {
      // flush_all [<cache>] [<delay>] [noreply]
      if (count > 4) return error(kError, false);
      request.noreply = last_is_noreply;
      std::vector<std::string_view> args(tokens.begin() + 1,
                                         tokens.end() - (request.noreply ? 1 : 0));
      if (args.size() > 2) return error(kError, false);
      request.cache = std::string(kDefaultCache);
      std::string_view delay;
      if (args.size() == 2) {
        if (!IsValidKey(args[0])) return error(kBadFormat, request.noreply);
        request.cache = std::string(args[0]);
        delay = args[1];
      } else if (args.size() == 1) {
        int64_t ignored = 0;
        if (ParseSigned(args[0], ignored)) {
          delay = args[0];
        } else if (IsValidKey(args[0])) {
          request.cache = std::string(args[0]);
        } else {
          return error(kBadFormat, request.noreply);
        }
      }
      if (!delay.empty()) {
        int64_t value = 0;
        if (!ParseSigned(delay, value)) return error(kInvalidExptime, request.noreply);
        request.delay = value;
      }
      break;
    }
    case Command::kVerbosity: {
      // verbosity <level> [noreply]
      if (count != 2 && count != 3) return error(kError, false);
      request.noreply = last_is_noreply;
      if (!ParseU32(tokens[1], request.verbosity)) return error(kBadFormat, request.noreply);
      break;
    }
    case Command::kStats:
      for (std::size_t i = 1; i < count; ++i) request.keys.emplace_back(tokens[i]);
      break;
    case Command::kVersion:
      break;
    case Command::kQuit:
      out.emplace_back(std::move(request));
      state_ = State::kClosed;
      return;
    default:
      return error(kError, false);
  }
  out.emplace_back(std::move(request));
}

}  // namespace cb::memcache
