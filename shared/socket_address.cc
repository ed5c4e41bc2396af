#include "shared/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "shared/config_values.h"

namespace cb {

Result<SocketAddress> ParseNumericSocketAddress(std::string_view text) {
  Result<HostPort> host_port = ParseHostPort(text);
  if (!host_port.ok()) return host_port.status();
  SocketAddress address;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
  if (inet_pton(AF_INET, host_port->host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(host_port->port);
    address.length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host_port->host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(host_port->port);
    address.length = sizeof(sockaddr_in6);
  } else {
    return Status::InvalidArgument("\"" + std::string(text) +
                                   "\" is not a numeric address (a web server resolves no names "
                                   "per request; give the IP address in the cluster file)");
  }
  address.text = host_port->ToString();
  return address;
}

bool SameSocketAddress(const sockaddr* a, socklen_t a_length, const sockaddr* b,
                       socklen_t b_length) {
  if (a->sa_family != b->sa_family) return false;
  if (a->sa_family == AF_INET && a_length >= sizeof(sockaddr_in) &&
      b_length >= sizeof(sockaddr_in)) {
    const auto* x = reinterpret_cast<const sockaddr_in*>(a);
    const auto* y = reinterpret_cast<const sockaddr_in*>(b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6 && a_length >= sizeof(sockaddr_in6) &&
      b_length >= sizeof(sockaddr_in6)) {
    const auto* x = reinterpret_cast<const sockaddr_in6*>(a);
    const auto* y = reinterpret_cast<const sockaddr_in6*>(b);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr)) == 0;
  }
  return a_length == b_length && std::memcmp(a, b, a_length) == 0;
}

}  // namespace cb
