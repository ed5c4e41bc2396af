// The cluster key: the secret every sidecar of a cluster shares, read once at
// startup from the file named by [cluster] key_file. Handshakes prove knowledge of
// it with HMAC-SHA256 (auth/handshake.h); it never goes on the wire.
//
// The file holds the key material as is (any bytes; a line of base64 from
// `head -c 32 /dev/urandom | base64` is typical); trailing white space and
// newlines are not part of the key, so editors and `echo` do not change it.
//
// Thread-safety: a ClusterKey is immutable after construction and may be read from
// any thread.
#ifndef CLUSTER_BALANCE_SIDECAR_AUTH_CLUSTER_KEY_H_
#define CLUSTER_BALANCE_SIDECAR_AUTH_CLUSTER_KEY_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "shared/status.h"

namespace cb::auth {

// Less key material than this is refused: an HMAC key this short is guessable.
inline constexpr std::size_t kMinClusterKeyBytes = 16;
// More than this is refused too: it is more likely the wrong file than a key.
inline constexpr std::size_t kMaxClusterKeyFileBytes = 64 * 1024;

// SECRET. Holds the key bytes. Copies are allowed (each owner needs its own), but
// every copy is another place the secret lives: pass it by const reference or move
// it where possible. Never log it, print it or put it in an error message; there
// is deliberately no operator<< and no ToString(). The bytes are wiped when the
// object is destroyed.
class ClusterKey {
 public:
  // Wraps `material` without checks; LoadClusterKey checks what it reads.
  explicit ClusterKey(std::string material) : material_(std::move(material)) {}
  ~ClusterKey();

  ClusterKey(const ClusterKey&) = default;
  ClusterKey& operator=(const ClusterKey&) = default;
  ClusterKey(ClusterKey&&) = default;
  ClusterKey& operator=(ClusterKey&&) = default;

  // The key bytes, for the HMAC only.
  std::string_view material() const { return material_; }

 private:
  std::string material_;
};

// Reads the key from `path`. Every error is a Status whose one-line message names
// the path and the cause, ready for a startup error line:
//   NotFound         the file does not exist;
//   InvalidArgument  not a regular file; readable, writable or executable by
//                    "other" (mode & 007, with the chmod to fix it); fewer than
//                    kMinClusterKeyBytes bytes after trimming trailing white
//                    space; more than kMaxClusterKeyFileBytes bytes;
//   IoError          it cannot be opened or read (e.g. permission denied).
// The key bytes never appear in a message.
Result<ClusterKey> LoadClusterKey(const std::string& path);

}  // namespace cb::auth

#endif  // CLUSTER_BALANCE_SIDECAR_AUTH_CLUSTER_KEY_H_
