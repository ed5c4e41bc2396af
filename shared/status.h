// Errors as values for the core library, in the manner of LevelDB's Status.
//
// A Status is either OK or carries a code and a message written for an operator
// ("cluster.toml:12: server[2].id: duplicate id \"app-b\" (first at line 7)").
// Result<T> holds either a T or a non-OK Status. Both are cheap to move and safe
// to copy; neither is thread-safe to mutate concurrently (like any value type).
#ifndef CLUSTER_BALANCE_SHARED_STATUS_H_
#define CLUSTER_BALANCE_SHARED_STATUS_H_

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cb {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // malformed input: a config, a frame, a file
    kNotFound,
    kIoError,
    kUnsupported,  // well-formed but of a version or kind this build does not know
    kTooLarge,     // input over a configured limit
  };

  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string message) {
    return Status(Code::kInvalidArgument, std::move(message));
  }
  static Status NotFound(std::string message) {
    return Status(Code::kNotFound, std::move(message));
  }
  static Status IoError(std::string message) { return Status(Code::kIoError, std::move(message)); }
  static Status Unsupported(std::string message) {
    return Status(Code::kUnsupported, std::move(message));
  }
  static Status TooLarge(std::string message) {
    return Status(Code::kTooLarge, std::move(message));
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  // The operator-facing message; empty for OK.
  const std::string& message() const { return message_; }
  // "OK" or "<code name>: <message>".
  std::string ToString() const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a value or the Status saying why there is none. Constructing from an
// OK Status is a programming error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  explicit operator bool() const { return ok(); }

  // OK when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(state_); }

  // Precondition: ok().
  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

}  // namespace cb

#endif  // CLUSTER_BALANCE_SHARED_STATUS_H_
