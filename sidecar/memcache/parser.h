// The memcached text protocol, request side: an incremental parser that turns the
// bytes a client sends into whole requests, or into the error memcached 1.6 would
// answer. Pure: no sockets, no store.
//
// Commands: get, gets, gat, gats (several keys), set, add, replace, append,
// prepend, cas, delete, touch, incr, decr, flush_all, version, stats, verbosity
// and quit, with "noreply" where memcached accepts it. Everything else (meta
// commands, binary protocol, upper case) is an unknown command: "ERROR".
//
// Lines end with "\n", optionally preceded by "\r"; tokens are separated by
// spaces (runs of spaces count as one). A key is 1..250 bytes without control
// characters (0x00-0x1f, 0x7f); other bytes, UTF-8 included, are allowed. Keys are
// passed on as the client sent them; splitting off a "<cache>:" prefix is
// commands.h's SplitKey.
//
// flush_all is extended to flush one named cache:
//   flush_all [<cache>] [<delay>] [noreply]
// With one argument, an integer is a delay (memcached's form) and anything else
// a cache name; with two, the first is the cache name (so a cache named with
// digits only is flushed with "flush_all 123 0") and the second the delay. No
// cache name means cache "default".
//
// Bounded memory: a command line longer than `max_line_bytes` (without its
// "\r\n") is answered "CLIENT_ERROR line too long" and closes the connection, as
// soon as the excess arrives, without waiting for its end. Lines of get, gets,
// gat and gats, which carry many keys (php-memcached's getMulti, pymemcache's
// get_many), may be up to `max_retrieval_line_bytes` and are not buffered: their
// keys are yielded as they arrive, at most `max_keys_per_request` per request
// (see Request::more_keys). A data block is buffered only up to
// `max_value_bytes`; a longer one is read and thrown away as it arrives
// (memcached's "swallow") and its request is yielded with `value_too_large` set.
// So the parser never holds more than BufferBound(limits) bytes between calls.
//
// A retrieval line of more than max_keys_per_request keys comes as several
// requests; an invalid key in it (or a line that turns out too long) yields the
// error after the requests already yielded (each of max_keys_per_request keys
// before the group of the bad key): a client then reads their values, then the
// error line, which ends the answer to the line as "END" would. The rest of the
// line is ignored (and closes silently if it is too long).
//
// Errors follow memcached 1.6 (the exact reply line is in ProtocolError::reply).
// Where memcached would go on reading a stream it can no longer follow, the
// parser closes instead:
//  - a storage command whose data length is missing, not a number, negative or
//    over 2^31-3 bytes: memcached answers and then reads the data block as
//    commands; the parser answers the same line and closes the connection;
//  - a data block not followed by "\r\n" ("CLIENT_ERROR bad data chunk"): a
//    client that miscounted its bytes (characters for bytes, say) would have the
//    rest of its value run as commands; the parser closes the connection;
//  - an overlong line: memcached closes silently; the parser answers
//    "CLIENT_ERROR line too long" first.
// A storage command whose length is valid but whose key, flags, exptime or cas
// unique is not gets its error after its data block has been swallowed (as
// memcached 1.6.40 and later do), so the connection stays in step.
//
// "noreply" suppresses every reply memcached would suppress: it is recognised,
// as memcached does, as the last token of a storage, delete, incr, decr, touch,
// flush_all or verbosity line, and then also silences that line's CLIENT_ERROR
// (but not an "ERROR" for a wrong number of tokens, nor an error that closes the
// connection: those are always sent).
//
// An unknown command whose last token starts with "HTTP/" (a web browser or
// HTTP client on the wrong port) closes the connection without a reply, as
// memcached does.
//
// After "quit" or an error that closes, the parser ignores every later byte.
//
// Thread-safety: RequestParser is not thread-safe (one per connection).
#ifndef CLUSTER_BALANCE_SIDECAR_MEMCACHE_PARSER_H_
#define CLUSTER_BALANCE_SIDECAR_MEMCACHE_PARSER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sidecar/protocol/key_command.h"

namespace cb::memcache {

inline constexpr std::size_t kMaxKeyBytes = 250;
// memcached's largest data block: a length must fit a 32-bit int with its "\r\n".
inline constexpr uint64_t kMaxDeclaredBytes = 2147483647 - 2;

// The commands and the key command are the cluster protocol's: the shape a
// request's key part travels in to the key's owner is the one parsed here.
using protocol::Command;
using protocol::IsRead;
using protocol::IsRetrieval;
using protocol::KeyCommand;

// The command's name as sent on the wire ("get", "flush_all", ...).
std::string_view CommandName(Command command);

// One whole request: its key command and what only the line itself has. Fields
// a command does not use keep their defaults.
struct Request : KeyCommand {
  // get/gets: one or more keys; gat/gats: zero or more; set ... decr, touch:
  // exactly one; stats: its arguments ("stats slabs" -> {"slabs"}); else empty.
  // Every key is valid (1..kMaxKeyBytes, no control character).
  std::vector<std::string> keys;
  uint64_t bytes = 0;      // storage commands: the declared data length
  uint32_t verbosity = 0;  // verbosity
  bool noreply = false;
  // get, gets, gat, gats: more requests with keys of the same line follow, so
  // the answer to this one ends without "END" (the last one's has it).
  bool more_keys = false;
  // flush_all: the cache to flush ("default" when none is named) and the delay
  // as sent (an exptime: seconds, or a unix time beyond 30 days), if any.
  std::string cache;
  std::optional<int64_t> delay;

  bool operator==(const Request&) const = default;
};

// What to do about input that is not a request.
struct ProtocolError {
  std::string reply;   // the bytes to send, "\r\n" included; empty under noreply
  bool close = false;  // close the connection once `reply` is sent

  bool operator==(const ProtocolError&) const = default;
};

using ParseResult = std::variant<Request, ProtocolError>;

struct ParserLimits {
  std::size_t max_line_bytes = 2048;
  // Far above what clients send (a 20,000-key get_many is a 140 KB line); raised
  // to max_line_bytes if lower. It bounds the work of one line, not memory.
  std::size_t max_retrieval_line_bytes = 1024 * 1024;
  // Keys of a retrieval line per request yielded (at least 1).
  std::size_t max_keys_per_request = 100;
  // The largest data block kept; set it to the largest cache's max entry size
  // (plus any slack). Commands check each cache's own limit.
  std::size_t max_value_bytes = 1024 * 1024;
};

// The most a parser with these limits holds between calls (buffered_bytes()).
std::size_t BufferBound(const ParserLimits& limits);

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Takes the next bytes of the stream, in any pieces: the results depend only on
  // the concatenation of everything fed, never on how it was split. Returns, in
  // order, every request and error these bytes complete (a storage command
  // completes when its data block, or the swallowing of it, does).
  std::vector<ParseResult> Feed(std::string_view bytes);

  // Bytes held for an unfinished line or data block.
  std::size_t buffered_bytes() const;

  // After quit or an error that closes: later bytes are ignored.
  bool closed() const { return state_ == State::kClosed; }

 private:
  // kKeys: the rest of a retrieval line, streamed (KeyStream).
  enum class State { kLine, kKeys, kData, kSwallow, kClosed };

  // A retrieval line, fed in any pieces after its command name: yields its keys
  // in requests of at most max_keys_per_request, or the error of its first bad
  // token (the rest of the line is then ignored).
  struct KeyStream {
    Request request;               // the command, exptime, and keys not yet yielded
    std::size_t line_bytes = 0;    // of the line so far, "\r" included
    std::string token;             // unfinished, at most kMaxKeyBytes + 2 bytes kept
    bool token_too_long = false;   // the token had more bytes than kept
    bool expects_exptime = false;  // gat, gats: the next token is the exptime
    bool has_keys = false;         // a key was seen on the line
    bool failed = false;           // an error was yielded: ignore the rest
    bool last_was_cr = false;      // the line's last byte so far is "\r"
  };

  void ParseLine(std::string_view line, std::vector<ParseResult>& out);
  // Starts keys_ for a line whose command `command` ends `head_bytes` into it.
  void BeginKeys(Command command, std::size_t head_bytes);
  // More of the line (no "\n"); fails the parser once the line is too long.
  void StreamKeys(std::string_view bytes, std::vector<ParseResult>& out);
  void EndToken(std::vector<ParseResult>& out);
  // The line's end; `has_cr`: the bytes streamed end with the "\r" of "\r\n".
  void EndKeys(bool has_cr, std::vector<ParseResult>& out);
  void FailLongKeyLine(std::vector<ParseResult>& out);
  // A line known to be over max_line_bytes, whose first bytes are in line_:
  // streamed when it is a retrieval line, else too long.
  void BeginLongLine(std::vector<ParseResult>& out);
  void ParseStorage(Command command, const std::vector<std::string_view>& tokens,
                    std::vector<ParseResult>& out);
  void FinishData(std::vector<ParseResult>& out);
  void FinishSwallow(std::vector<ParseResult>& out);
  void Fail(std::string reply, std::vector<ParseResult>& out);

  ParserLimits limits_;
  State state_ = State::kLine;
  std::string line_;        // an unfinished line, without its "\n"
  KeyStream keys_;          // kKeys
  Request pending_;         // the storage request whose data block is being read
  uint64_t remaining_ = 0;  // bytes of the data block (with its "\r\n") still due
  std::optional<ProtocolError> swallowed_error_;  // answered once the swallow ends
};

}  // namespace cb::memcache

#endif  // CLUSTER_BALANCE_SIDECAR_MEMCACHE_PARSER_H_
