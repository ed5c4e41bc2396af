// The view file: a sidecar publishes its ClusterView into a memory-mapped file;
// every nginx worker and httpd child maps the same file and reads it per request
// with no system call and no lock.
//
// Protocol: a seqlock. The sequence in the header is even when the view is stable.
// The writer makes it odd, stores the view, and makes it even again (release). A
// reader loads the sequence (acquire), copies the view, and loads the sequence
// again; equal and even means the copy is whole, otherwise it tries again. Both
// sides copy in relaxed atomic 64-bit words, so the protocol has no data race in
// the C++ memory model. A reader keeps its last good copy and, while the sequence
// is unchanged, returns it after a single atomic load.
//
// The writer never truncates or reformats a file in place: a file of another
// format or size is replaced by rename, and readers notice with MappingIsStale().
#ifndef CLUSTER_BALANCE_SHARED_VIEW_FILE_H_
#define CLUSTER_BALANCE_SHARED_VIEW_FILE_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "shared/cluster_view.h"
#include "shared/status.h"

namespace cb {

// Publishes views into one file. Holds an exclusive lock (an open-file-description
// lock, fcntl F_OFD_SETLK) on "<path>.lock" for its lifetime, so a second sidecar pointed at the
// same path fails to open it instead of interleaving updates or replacing the file under the first.
// Not thread-safe: one publishing thread.
class ViewWriter {
 public:
  // Opens `path` for publishing, creating it (mode 0644 whatever the umask: nginx
  // workers run as another user and must read it) with an empty view when it
  // does not exist or is not a view file of this format; an existing good file is
  // updated in place so that readers keep their mapping across sidecar restarts.
  static Result<std::unique_ptr<ViewWriter>> Open(const std::string& path);

  ViewWriter(const ViewWriter&) = delete;
  ViewWriter& operator=(const ViewWriter&) = delete;
  ~ViewWriter();

  // Validates and publishes `view`. Never blocks readers for longer than one copy.
  Status Publish(const ClusterView& view);

  const std::string& path() const { return path_; }

 private:
  ViewWriter(std::string path, int lock_fd, int fd, void* mapping);
  static Result<int> OpenForPublishing(const std::string& path);

  std::string path_;
  int lock_fd_;
  int fd_;
  void* mapping_;
};

// Reads views from one file. Not thread-safe: give each thread (each nginx worker)
// its own reader.
class ViewReader {
 public:
  // Refuses (with a message naming the path) a file that is missing, shorter than a
  // view, not a view file (magic), or of another format version.
  static Result<std::unique_ptr<ViewReader>> Open(const std::string& path);

  ViewReader(const ViewReader&) = delete;
  ViewReader& operator=(const ViewReader&) = delete;
  ~ViewReader();

  // The newest whole view. The pointer stays valid until the next call or until
  // the reader is destroyed; cache what you derive from a view (a RoutingTable)
  // keyed on snapshot_id(), not on the pointer. A view that fails
  // ClusterView::Validate() is refused (an error naming the path and the fault)
  // until the writer publishes again. When every retry overlaps an update (a writer
  // publishing back to back, or one preempted in the middle of an update on a busy
  // machine), the last whole view this reader took is returned; with none yet, the
  // reader retries for at most kFirstCopyPatience, yielding the CPU, before an
  // error: a reader's first copy is worth a short wait, never a block.
  Result<const ClusterView*> Current();
  static constexpr std::chrono::microseconds kFirstCopyPatience{2000};

  // Identifies the view Current() last returned: unique among all copies that any
  // reader in this process has taken. 0 before the first.
  uint64_t snapshot_id() const { return snapshot_id_; }

  // True when the path no longer names the mapped file (replaced or removed) or the
  // file was cut short: the caller should open a new reader. One stat(2); call it
  // at most every second or so. The view's directory must be writable only by the
  // sidecar: a file truncated under a mapping faults (SIGBUS) on the next read.
  bool MappingIsStale() const;

  // False when no process holds the publisher's lock on "<path>.lock": the sidecar
  // that wrote the view has stopped or died, so the view no longer follows the
  // cluster. Tests the lock without taking it (no interference with a starting
  // sidecar). True when it cannot tell (a lock file it may not read). Two system
  // calls; call it at most every second or so.
  bool PublisherIsRunning() const;

  const std::string& path() const { return path_; }

 private:
  ViewReader(std::string path, const void* mapping, dev_t device, ino_t inode);

  // One try at a whole copy, through `scratch` (room for a ClusterView's words): the
  // view (or why it is refused), or nullopt when the copy overlapped an update.
  std::optional<Result<const ClusterView*>> TryCopy(uint64_t* scratch);

  std::string path_;
  const void* mapping_;
  dev_t device_;
  ino_t inode_;
  uint64_t snapshot_sequence_ = 0;
  uint64_t snapshot_id_ = 0;
  bool have_snapshot_ = false;
  uint64_t refused_sequence_ = 0;
  Status refused_;  // OK, or why the view under refused_sequence_ was refused
  std::unique_ptr<ClusterView> snapshot_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_VIEW_FILE_H_
