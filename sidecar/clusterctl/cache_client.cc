#include "sidecar/clusterctl/cache_client.h"

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <charconv>
#include <functional>
#include <utility>

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
                                 const std::string& request, std::chrono::milliseconds timeout) {
  const std::string where = "memcached " + address.ToString();
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  std::string reply;
  std::array<char, 16 * 1024> chunk{};
  boost::beast::error_code failure;
  // Reads until the reply is whole; the stream's deadline (asynchronous
  // operations only) bounds the whole exchange.
  std::function<void()> read_more = [&] {
    if (CacheReplyComplete(verb, reply)) return;
    stream.async_read_some(boost::asio::buffer(chunk),
                           [&](const boost::beast::error_code& error, std::size_t got) {
                             reply.append(chunk.data(), got);
                             if (error) {
                               failure = error;
                               return;
                             }
                             read_more();
                           });
  };
  try {
    boost::asio::ip::tcp::resolver resolver(io);
    const auto endpoints = resolver.resolve(address.host, std::to_string(address.port));
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](const boost::beast::error_code& connected, const auto&) {
      if (connected) {
        failure = connected;
        return;
      }
      boost::asio::async_write(stream, boost::asio::buffer(request),
                               [&](const boost::beast::error_code& written, std::size_t) {
                                 if (written) {
                                   failure = written;
                                   return;
                                 }
                                 read_more();
                               });
    });
    io.run();
  } catch (const std::exception& error) {
    return Status::IoError(where + ": " + error.what() + " (is the sidecar running?)");
  }
  if (failure == boost::beast::error::timeout) {
    return Status::IoError(where + ": no answer within " + std::to_string(timeout.count()) + " ms");
  }
  if (failure && !CacheReplyComplete(verb, reply)) {
    return Status::IoError(where + ": " + failure.message() + " (is the sidecar running?)");
  }
  return reply;
}

}  // namespace cb
