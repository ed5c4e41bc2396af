// One framed TCP connection between two sidecars (either side: accepted by a
// Listener or dialed by a PeerDialer).
//
// Contract:
//  - Start(on_message, on_closed) begins reading. Every whole frame is decoded
//    (shared/frame_codec.h, with the limits given at construction) into a
//    protocol::Message and passed to on_message, in order.
//  - A malformed or oversized frame, or a frame that is not a known message,
//    closes this connection (and nothing else) with the decoder's Status.
//  - on_closed(Status) is called exactly once (if Start was called), after the
//    last on_message: "peer closed the connection" (IoError) on EOF, the socket
//    error's text on an error, the decoding error, "peer is not reading ..." when
//    the outgoing queue overflows, or the reason given to Close() /
//    CloseAfterFlush() (OK by default: closed by this side on purpose). It is
//    never called from inside Close(), Send() or Start() (it is posted), so the
//    caller may hold its own locks or iterators across those calls.
//  - Send() queues one frame; frames go out in the order sent, with at most one
//    write in flight (the bytes queued meanwhile go out in the next write).
//    The queue is bounded: past `max_queued_bytes` the connection closes.
//  - Close() closes at once, dropping what is queued; idempotent.
//    CloseAfterFlush() writes what is queued first (e.g. a Refusal), then shuts
//    the sending side, waits for the peer's EOF and closes; bounded by a timeout.
//  - After the close, no callback is called again and the callbacks are released
//    (so lambdas that hold the connection do not keep it alive).
//
// Thread-safety: not thread-safe. Create, use and destroy it on the thread that
// runs its socket's io_context (the daemon runs a single-threaded io_context);
// every callback runs there too. Callbacks must not throw.
#ifndef CLUSTER_BALANCE_SIDECAR_TRANSPORT_CONNECTION_H_
#define CLUSTER_BALANCE_SIDECAR_TRANSPORT_CONNECTION_H_

#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shared/frame_codec.h"
#include "shared/status.h"
#include "sidecar/protocol/messages.h"

namespace cb::transport {

namespace asio = boost::asio;

// Default bound of a connection's outgoing queue: a few of the largest frames.
inline constexpr std::size_t kDefaultMaxQueuedBytes = 64 * 1024 * 1024;

// "127.0.0.1:6800", "[::1]:6800".
std::string EndpointText(const asio::ip::tcp::endpoint& endpoint);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using MessageHandler = std::function<void(protocol::Message)>;
  using ClosedHandler = std::function<void(const Status&)>;

  struct Stats {
    uint64_t messages_received = 0;
    uint64_t messages_sent = 0;  // queued by Send
    uint64_t bytes_received = 0;
    uint64_t bytes_written = 0;
    uint64_t writes = 0;  // async_write calls (each carries every frame queued by then)
  };

  // Takes an open, connected socket; sets TCP_NODELAY. Nothing is read before
  // Start(). `max_queued_bytes` is raised to hold at least one largest frame.
  static std::shared_ptr<Connection> Create(asio::ip::tcp::socket socket, FrameLimits limits,
                                            std::size_t max_queued_bytes = kDefaultMaxQueuedBytes);

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  // Starts the read loop. Call once; when the connection was closed before,
  // on_closed is posted at once.
  void Start(MessageHandler on_message, ClosedHandler on_closed);

  // Queues `message`. OK when queued; TooLarge when it encodes over the frame
  // limit (nothing queued, the connection stays open); IoError when the
  // connection is closed or closing, or when this frame overflows the queue (the
  // connection is then closed with that status).
  Status Send(const protocol::Message& message);

  // Closes now (see the header comment); `reason` goes to on_closed.
  void Close(Status reason = Status::Ok());

  // Sends what is queued, then closes (see the header comment). Messages that
  // arrive meanwhile are dropped. `reason` goes to on_closed.
  void CloseAfterFlush(Status reason = Status::Ok(),
                       std::chrono::milliseconds timeout = std::chrono::seconds(2));

  // Also tells `observer` of the close, once, after on_closed (or at once,
  // posted, when already closed). For owners of the connection's life such as
  // PeerDialer; works before Start().
  void AddCloseObserver(ClosedHandler observer);

  // The peer's address for log lines, fixed at construction ("?" if unknown).
  const std::string& remote_endpoint() const { return remote_endpoint_; }
  bool closed() const { return closed_; }
  // Bytes handed to Send and not yet written to the socket.
  std::size_t queued_bytes() const { return pending_.size() + writing_.size(); }
  const Stats& stats() const { return stats_; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

 private:
  Connection(asio::ip::tcp::socket socket, FrameLimits limits, std::size_t max_queued_bytes);

  void ReadSome();
  void OnRead(const boost::system::error_code& error, std::size_t bytes);
  void WriteQueued();
  void OnWritten(const boost::system::error_code& error, std::size_t bytes);
  void FinishFlush();
  void PostClosed();

  asio::ip::tcp::socket socket_;
  asio::steady_timer flush_timer_;
  FrameLimits limits_;
  std::size_t max_queued_bytes_;
  FrameDecoder decoder_;
  std::string remote_endpoint_;
  std::vector<char> read_buffer_;
  std::string pending_;  // frames queued while a write is in flight
  std::string writing_;  // the bytes of the write in flight
  bool write_in_flight_ = false;
  bool delivering_ = false;  // inside on_message_
  bool started_ = false;
  bool flushing_ = false;
  bool closed_ = false;
  Status close_reason_;
  MessageHandler on_message_;
  ClosedHandler on_closed_;
  std::vector<ClosedHandler> observers_;
  Stats stats_;
};

}  // namespace cb::transport

#endif  // CLUSTER_BALANCE_SIDECAR_TRANSPORT_CONNECTION_H_
