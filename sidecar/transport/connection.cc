#include "sidecar/transport/connection.h"

#include "sidecar/transport/listen_on.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <exception>
#include <string_view>

namespace cb::transport {
namespace {

constexpr std::size_t kReadBufferBytes = 64 * 1024;

}  // namespace

std::string EndpointText(const asio::ip::tcp::endpoint& endpoint) {
  const std::string address = endpoint.address().to_string();
  const std::string port = std::to_string(endpoint.port());
  if (endpoint.address().is_v6()) return "[" + address + "]:" + port;
  return address + ":" + port;
}

std::shared_ptr<Connection> Connection::Create(asio::ip::tcp::socket socket, FrameLimits limits,
                                               std::size_t max_queued_bytes) {
  return std::shared_ptr<Connection>(new Connection(std::move(socket), limits, max_queued_bytes));
}

Connection::Connection(asio::ip::tcp::socket socket, FrameLimits limits,
                       std::size_t max_queued_bytes)
    : socket_(std::move(socket)),
      flush_timer_(socket_.get_executor()),
      limits_(limits),
      max_queued_bytes_(std::max(max_queued_bytes, limits.max_payload_bytes + kFrameHeaderBytes)),
      decoder_(limits),
      read_buffer_(kReadBufferBytes) {
  boost::system::error_code error;
  socket_.set_option(asio::ip::tcp::no_delay(true), error);  // best effort
  const asio::ip::tcp::endpoint remote = socket_.remote_endpoint(error);
  remote_endpoint_ = error ? std::string("?") : EndpointText(remote);
}

Connection::~Connection() = default;

void Connection::Start(MessageHandler on_message, ClosedHandler on_closed) {
  if (started_) return;
  started_ = true;
  on_closed_ = std::move(on_closed);
  if (closed_) {
    PostClosed();
    return;
  }
  on_message_ = std::move(on_message);
  ReadSome();
}

void Connection::ReadSome() {
  socket_.async_read_some(
      asio::buffer(read_buffer_),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
        self->OnRead(error, bytes);
      });
}

void Connection::OnRead(const boost::system::error_code& error, std::size_t bytes) {
  if (closed_) return;
  if (error) {
    Close(error == asio::error::eof ? Status::IoError("peer closed the connection")
                                    : Status::IoError("read: " + DescribeError(error)));
    return;
  }
  stats_.bytes_received += bytes;
  if (flushing_) {  // draining until the peer's EOF; nothing is delivered any more
    ReadSome();
    return;
  }
  decoder_.Append(std::string_view(read_buffer_.data(), bytes));
  for (;;) {
    Result<std::optional<msgpack::object_handle>> frame = decoder_.Next();
    if (!frame.ok()) {
      Close(frame.status());
      return;
    }
    if (!frame->has_value()) break;
    Result<protocol::Message> message = protocol::DecodeMessage((*frame)->get());
    if (!message.ok()) {
      Close(message.status());
      return;
    }
    ++stats_.messages_received;
    delivering_ = true;
    try {
      on_message_(std::move(message).value());
    } catch (const std::exception& exception) {
      Close(Status::IoError(std::string("message handler failed: ") + exception.what()));
    }
    delivering_ = false;
    if (closed_) {
      on_message_ = nullptr;  // left alone by PostClosed() while it was running
      return;
    }
    if (flushing_) break;
  }
  ReadSome();
}

Status Connection::Send(const protocol::Message& message) {
  if (closed_ || flushing_) {
    return Status::IoError("connection to " + remote_endpoint_ + " is closed");
  }
  if (Status appended = protocol::AppendMessage(pending_, message, limits_); !appended.ok()) {
    return appended;  // AppendFrame leaves pending_ unchanged on error
  }
  ++stats_.messages_sent;
  if (queued_bytes() > max_queued_bytes_) {
    Status overflow = Status::IoError("peer is not reading: " + std::to_string(queued_bytes()) +
                                      " bytes queued, limit " + std::to_string(max_queued_bytes_));
    Close(overflow);
    return overflow;
  }
  if (!write_in_flight_) WriteQueued();
  return Status::Ok();
}

void Connection::WriteQueued() {
  writing_.clear();
  writing_.swap(pending_);
  write_in_flight_ = true;
  ++stats_.writes;
  // writing_ is neither touched nor freed until the completion: Close() only
  // clears pending_, and the handler holds the connection.
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const boost::system::error_code& error, std::size_t bytes) {
        self->OnWritten(error, bytes);
      });
}

void Connection::OnWritten(const boost::system::error_code& error, std::size_t bytes) {
  write_in_flight_ = false;
  if (closed_) return;
  if (error) {
    Close(Status::IoError("write: " + DescribeError(error)));
    return;
  }
  stats_.bytes_written += bytes;
  writing_.clear();
  if (!pending_.empty()) {
    WriteQueued();
  } else if (flushing_) {
    FinishFlush();
  }
}

void Connection::CloseAfterFlush(Status reason, std::chrono::milliseconds timeout) {
  if (closed_ || flushing_) return;
  flushing_ = true;
  close_reason_ = std::move(reason);
  flush_timer_.expires_after(timeout);
  flush_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (!error) self->Close();
  });
  if (!write_in_flight_) FinishFlush();  // nothing queued: Send writes at once when idle
}

void Connection::FinishFlush() {
  boost::system::error_code error;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_send, error);
  // The read loop now discards input until the peer's EOF, then closes: closing
  // with unread input would send a reset that can destroy the frames just sent.
  if (error || !started_) Close();
}

void Connection::Close(Status reason) {
  if (closed_) return;
  closed_ = true;
  if (!flushing_) close_reason_ = std::move(reason);
  boost::system::error_code error;
  socket_.close(error);
  flush_timer_.cancel();
  pending_.clear();
  PostClosed();
}

void Connection::AddCloseObserver(ClosedHandler observer) {
  observers_.push_back(std::move(observer));
  if (closed_) PostClosed();
}

void Connection::PostClosed() {
  // Everything the callbacks hold is moved out, so the connection keeps none of
  // it; on_message_ only when it is not running (else OnRead drops it after).
  MessageHandler on_message;
  if (!delivering_) on_message = std::move(on_message_);
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), on_message = std::move(on_message),
              on_closed = std::move(on_closed_), observers = std::move(observers_),
              reason = close_reason_]() mutable {
               on_message = nullptr;
               try {
                 if (on_closed) on_closed(reason);
                 for (ClosedHandler& observer : observers) observer(reason);
               } catch (...) {
                 // Callbacks must not throw; nothing sensible to do here.
               }
             });
  if (!delivering_) on_message_ = nullptr;
  on_closed_ = nullptr;
  observers_.clear();
}

}  // namespace cb::transport
