#include "sidecar/clusterctl/cache_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <utility>  // before Asio: Boost 1.74 under g++ 12 needs it

namespace cb {
namespace {

constexpr std::size_t kMaxKeyBytes = 250;

bool IsErrorLine(std::string_view line) {
  return line == "ERROR" || line.starts_with("CLIENT_ERROR") || line.starts_with("SERVER_ERROR");
}

// The first line of `text` without its "\r\n"; nullopt while incomplete.
std::optional<std::string_view> FirstLine(std::string_view text) {
  const std::size_t end = text.find("\r\n");
  if (end == std::string_view::npos) return std::nullopt;
  return text.substr(0, end);
}

}  // namespace

Result<std::string> BuildCacheRequest(CacheVerb verb, std::string_view cache, std::string_view key,
                                      std::string_view value, int64_t ttl_seconds) {
  const std::string full = std::string(cache) + ":" + std::string(key);
  if (key.empty() || full.size() > kMaxKeyBytes) {
    return Status::InvalidArgument("key must be 1.." + std::to_string(kMaxKeyBytes) +
                                   " bytes with its \"" + std::string(cache) + ":\" prefix");
  }
  for (char c : full) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Status::InvalidArgument("key must not contain white space or control characters");
    }
  }
  switch (verb) {
    case CacheVerb::kGet:
      return "get " + full + "\r\n";
    case CacheVerb::kDelete:
      return "delete " + full + "\r\n";
    case CacheVerb::kSet:
      return "set " + full + " 0 " + std::to_string(ttl_seconds) + " " +
             std::to_string(value.size()) + "\r\n" + std::string(value) + "\r\n";
  }
  return Status::InvalidArgument("unknown verb");
}

bool CacheReplyComplete(CacheVerb verb, std::string_view reply) {
  const std::optional<std::string_view> line = FirstLine(reply);
  if (!line) return false;
  if (verb != CacheVerb::kGet || IsErrorLine(*line) || *line == "END") return true;
  // VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n
  const std::size_t last_space = line->rfind(' ');
  uint64_t bytes = 0;
  if (last_space == std::string_view::npos) return true;  // malformed: let the parser say so
  std::from_chars(line->data() + last_space + 1, line->data() + line->size(), bytes);
  return reply.size() >= line->size() + 2 + bytes + 2 + 5;
}

Result<std::optional<std::string>> ParseCacheReply(CacheVerb verb, std::string_view reply) {
  const std::optional<std::string_view> line = FirstLine(reply);
  if (!line) return Status::IoError("incomplete reply");
  if (IsErrorLine(*line)) return Status::IoError(std::string(*line));
  switch (verb) {
    case CacheVerb::kSet:
      if (*line == "STORED") return std::optional<std::string>();
      break;
    case CacheVerb::kDelete:
      if (*line == "DELETED") return std::optional<std::string>();
      if (*line == "NOT_FOUND") return Status::NotFound("no such key");
      break;
    case CacheVerb::kGet: {
      if (*line == "END") return std::optional<std::string>();
      if (!line->starts_with("VALUE ")) break;
      const std::size_t last_space = line->rfind(' ');
      uint64_t bytes = 0;
      const auto [end, error] =
          std::from_chars(line->data() + last_space + 1, line->data() + line->size(), bytes);
      const std::size_t data_start = line->size() + 2;
      if (error != std::errc() || end != line->data() + line->size() ||
          reply.size() < data_start + bytes + 2 || reply.substr(data_start + bytes, 2) != "\r\n") {
        break;
      }
      return std::optional<std::string>(std::string(reply.substr(data_start, bytes)));
    }
  }
  return Status::IoError("unexpected reply \"" + std::string(line->substr(0, 80)) + "\"");
}

Result<std::string> CallMemcache(const HostPort& address, CacheVerb verb,
                                 const std::string& request) {
  const std::string where = "memcached " + address.ToString();
  try {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver(io);
    boost::asio::ip::tcp::socket socket(io);
    boost::asio::connect(socket, resolver.resolve(address.host, std::to_string(address.port)));
    boost::asio::write(socket, boost::asio::buffer(request));
    std::string reply;
    char chunk[16 * 1024];
    while (!CacheReplyComplete(verb, reply)) {
      boost::system::error_code error;
      const std::size_t got = socket.read_some(boost::asio::buffer(chunk), error);
      if (error) return Status::IoError(where + ": " + error.message());
      reply.append(chunk, got);
    }
    return reply;
  } catch (const std::exception& error) {
    return Status::IoError(where + ": " + error.what() + " (is the sidecar running?)");
  }
}

}  // namespace cb
