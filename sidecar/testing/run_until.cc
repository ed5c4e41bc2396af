#include "sidecar/testing/run_until.h"

namespace cb::testing_support {

bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::steady_clock::duration deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace cb::testing_support
