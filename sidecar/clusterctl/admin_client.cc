#include "sidecar/clusterctl/admin_client.h"

// First: Asio's coroutine support as this project's compilers need it.
#include "sidecar/admin/asio_coroutines.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>

namespace cb {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kChunkBytes = 64 * 1024;
// The answers clusterctl reads are small JSON documents; this only bounds a
// misbehaving peer.
constexpr uint64_t kMaxReplyBytes = 64 * 1024 * 1024;

struct Exchange {
  const AdminCallOptions* options = nullptr;
  std::string method;
  std::string target;
  std::string host_header;
  std::string csrf_token;  // sent as X-CSRF-Token when not empty
  // What happened; `stage` names the step that failed.
  beast::error_code error;
  const char* stage = "";
  std::optional<AdminReply> reply;
};

template <typename Stream>
asio::awaitable<void> Converse(Stream& stream, tcp::resolver::results_type endpoints,
                               Exchange& exchange) {
  beast::error_code& ec = exchange.error;
  const AdminCallOptions& options = *exchange.options;
  auto& lowest = beast::get_lowest_layer(stream);
  // One deadline for connect, handshake, write and read together: a stopped
  // sidecar cannot hang clusterctl.
  lowest.expires_after(options.timeout);
  exchange.stage = "connect";
  co_await lowest.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return;
  if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
    exchange.stage = "TLS handshake";
    co_await stream.async_handshake(ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
  }

  http::request<http::empty_body> request(http::string_to_verb(exchange.method), exchange.target,
                                          11);
  request.set(http::field::host, exchange.host_header);
  request.set(http::field::user_agent, "clusterctl");
  if (!exchange.csrf_token.empty()) request.set("X-CSRF-Token", exchange.csrf_token);
  if (!options.user.empty()) {
    request.set(http::field::authorization,
                "Basic " + Base64Encode(options.user + ":" + options.password));
  }
  if (!options.body.empty()) request.set(http::field::content_type, options.content_type);
  if (!options.body.empty() || exchange.method == "POST" || exchange.method == "PUT") {
    request.content_length(options.body.size());
  }
  request.keep_alive(false);

  // The header, then the body in chunks so that the caller can show progress.
  exchange.stage = "send";
  http::request_serializer<http::empty_body> serializer(request);
  co_await http::async_write_header(stream, serializer,
                                    asio::redirect_error(asio::use_awaitable, ec));
  const uint64_t total = options.body.size();
  uint64_t sent = 0;
  while (!ec && sent < total) {
    const std::size_t chunk =
        static_cast<std::size_t>(std::min<uint64_t>(kChunkBytes, total - sent));
    co_await asio::async_write(stream, asio::buffer(options.body.data() + sent, chunk),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    sent += chunk;
    if (options.on_body_progress) options.on_body_progress(sent, total);
  }
  // A sidecar may answer (401, 413) and close before it has read the whole body:
  // its answer says more than the broken pipe, so read it when there is one.
  const beast::error_code send_error = ec;
  const char* const send_stage = exchange.stage;

  exchange.stage = "receive";
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  beast::error_code read_error;
  co_await http::async_read(stream, buffer, parser,
                            asio::redirect_error(asio::use_awaitable, read_error));
  if (read_error) {
    ec = send_error ? send_error : read_error;
    if (send_error) exchange.stage = send_stage;
    co_return;
  }
  ec = {};
  http::response<http::string_body> response = parser.release();
  AdminReply reply;
  reply.status = response.result_int();
  reply.retry_after = std::string(response[http::field::retry_after]);
  reply.body = std::move(response.body());
  exchange.reply = std::move(reply);
  beast::error_code ignored;
  lowest.socket().shutdown(tcp::socket::shutdown_both, ignored);
}

// Makes the TLS client check the certificate against the endpoint's host (a
// name, or an IP literal against the certificate's IP addresses) and send SNI.
Status ConfigureTls(beast::ssl_stream<beast::tcp_stream>& stream, const std::string& host,
                    const std::string& where) {
  SSL* handle = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(handle);
  beast::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  if (!not_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1) {
      return Status::InvalidArgument(where + ": cannot check the certificate for " + host);
    }
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) != 1 ||
        SSL_set_tlsext_host_name(handle, const_cast<char*>(host.c_str())) != 1) {
      return Status::InvalidArgument(where + ": cannot check the certificate for " + host);
    }
  }
  stream.set_verify_mode(ssl::verify_peer);
  return Status::Ok();
}

}  // namespace

std::string AdminEndpoint::ToString() const { return (tls ? "https://" : "") + address.ToString(); }

Result<AdminEndpoint> ParseAdminEndpoint(std::string_view text) {
  AdminEndpoint endpoint;
  std::string_view rest = text;
  if (rest.starts_with("https://")) {
    endpoint.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else if (rest.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\": only http:// and https:// are supported");
  }
  if (rest.ends_with('/')) rest.remove_suffix(1);
  Result<HostPort> address = ParseHostPort(rest);
  if (!address.ok()) return address.status();
  endpoint.address = std::move(address).value();
  return endpoint;
}

namespace {

// One request and its reply.
Result<AdminReply> Call(const AdminEndpoint& endpoint, const std::string& method,
                        const std::string& target, const AdminCallOptions& options,
                        const std::string& csrf_token) {
  const std::string where = "admin " + endpoint.ToString();
  asio::io_context io;
  Exchange exchange;
  exchange.options = &options;
  exchange.method = method;
  exchange.target = target;
  exchange.host_header = endpoint.address.ToString();
  exchange.csrf_token = csrf_token;
  std::exception_ptr thrown;
  const auto finished = [&thrown](std::exception_ptr error) { thrown = std::move(error); };
  try {
    tcp::resolver resolver(io);
    const auto endpoints =
        resolver.resolve(endpoint.address.host, std::to_string(endpoint.address.port));
    if (endpoint.tls) {
      ssl::context context(ssl::context::tls_client);
      beast::error_code loaded;
      if (options.ca_file.empty()) {
        context.set_default_verify_paths(loaded);
      } else {
        context.load_verify_file(options.ca_file, loaded);
      }
      if (loaded) {
        return Status::InvalidArgument((options.ca_file.empty() ? "the system's certificate store"
                                                                : "--ca-file " + options.ca_file) +
                                       ": " + loaded.message());
      }
      beast::ssl_stream<beast::tcp_stream> stream(io, context);
      Status configured = ConfigureTls(stream, endpoint.address.host, where);
      if (!configured.ok()) return configured;
      asio::co_spawn(io, Converse(stream, endpoints, exchange), finished);
      io.run();
    } else {
      beast::tcp_stream stream(io);
      asio::co_spawn(io, Converse(stream, endpoints, exchange), finished);
      io.run();
    }
    if (thrown) std::rethrow_exception(thrown);
  } catch (const std::exception& error) {
    return Status::IoError(where + ": " + error.what() + " (is the sidecar running?)");
  }
  if (exchange.reply) return std::move(*exchange.reply);
  if (exchange.error == beast::error::timeout) {
    return Status::IoError(where + ": no answer within " + std::to_string(options.timeout.count()) +
                           " ms");
  }
  if (std::string_view(exchange.stage) == "TLS handshake") {
    return Status::IoError(where + ": TLS handshake: " + exchange.error.message());
  }
  return Status::IoError(where + ": " + exchange.error.message() + " (is the sidecar running?)");
}

}  // namespace

Result<AdminReply> CallAdmin(const AdminEndpoint& endpoint, const std::string& method,
                             const std::string& target, const AdminCallOptions& options) {
  if (method != "POST") return Call(endpoint, method, target, options, "");
  // A POST must carry the sidecar's CSRF token, which only an authenticated GET
  // can read. The GET sends the credentials but not the body.
  AdminCallOptions get = options;
  get.body = {};
  get.on_body_progress = nullptr;
  Result<AdminReply> token = Call(endpoint, "GET", "/csrf-token", get, "");
  if (!token.ok()) return token.status();
  std::string value;
  if (token->status == 200) {
    nlohmann::json body = nlohmann::json::parse(token->body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("csrf_token") || !body["csrf_token"].is_string() ||
        body["csrf_token"].get<std::string>().empty()) {
      return Status::InvalidArgument("admin " + endpoint.ToString() +
                                     ": GET /csrf-token did not answer {\"csrf_token\": \"...\"}");
    }
    value = body["csrf_token"].get<std::string>();
  } else if (token->status == 401 || token->status == 429) {
    return token;  // the POST would be refused the same way
  }
  // 404: a sidecar older than the token, which takes the POST without it (any
  // other answer: the POST gets the sidecar's own refusal).
  return Call(endpoint, method, target, options, value);
}

Result<AdminReply> CallAdmin(const HostPort& address, const std::string& method,
                             const std::string& target, std::chrono::milliseconds timeout) {
  AdminCallOptions options;
  options.timeout = timeout;
  return CallAdmin(AdminEndpoint{address, false}, method, target, options);
}

Status AdminReplyError(const AdminEndpoint& endpoint, const std::string& method,
                       const std::string& target, const AdminReply& reply) {
  const std::string where = endpoint.ToString();
  if (reply.status == 401)
    return Status::InvalidArgument(where + ": authentication required (--user)");
  if (reply.status == 429) {
    return Status::InvalidArgument(where + ": too many failed attempts, retry after " +
                                   (reply.retry_after.empty() ? "a while" : reply.retry_after) +
                                   " s");
  }
  const nlohmann::json error = nlohmann::json::parse(reply.body, nullptr, false);
  if (error.is_object() && error.contains("error") && error["error"].is_string()) {
    return Status::InvalidArgument(error["error"].get<std::string>());
  }
  return Status::IoError(where + ": " + method + " " + target + " answered HTTP " +
                         std::to_string(reply.status));
}

std::string PercentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if ((byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
        (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' || byte == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 15];
    }
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    uint32_t n = static_cast<unsigned char>(bytes[i]) << 16;
    if (left == 2) n |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += left == 2 ? kAlphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace cb
