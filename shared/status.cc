#include "shared/status.h"

namespace cb {
namespace {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "invalid argument";
    case Status::Code::kNotFound:
      return "not found";
    case Status::Code::kIoError:
      return "I/O error";
    case Status::Code::kUnsupported:
      return "unsupported";
    case Status::Code::kTooLarge:
      return "too large";
  }
  return "unknown";
}

}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string text(CodeName(code_));
  text += ": ";
  text += message_;
  return text;
}

}  // namespace cb
