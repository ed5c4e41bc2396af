// Driving an io_context in the sidecar's unit tests: bounded waits for a
// condition, never a sleep.
#ifndef CLUSTER_BALANCE_SIDECAR_TESTING_RUN_UNTIL_H_
#define CLUSTER_BALANCE_SIDECAR_TESTING_RUN_UNTIL_H_

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace cb::testing_support {

// Runs `io`'s handlers until `done()` holds or `deadline` passes; true when done.
// Restarts `io` when it ran out of work, so a test can wait on work it posts later.
bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
              std::chrono::steady_clock::duration deadline = std::chrono::seconds(10));

}  // namespace cb::testing_support

#endif  // CLUSTER_BALANCE_SIDECAR_TESTING_RUN_UNTIL_H_
