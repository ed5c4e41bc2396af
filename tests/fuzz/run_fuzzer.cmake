# Runs one libFuzzer target briefly for ctest (see tests/CMakeLists.txt):
#
#   cmake -DFUZZER=<binary> -DWORK_DIR=<dir in the build tree> -DSEED_DIR=<committed corpus>
#         [-DDICT=<file>] [-DSECONDS=5] -P run_fuzzer.cmake
#
# WORK_DIR/corpus is emptied first and passed as the first corpus directory, so new
# inputs land in the build tree and every run starts from the committed seeds only;
# crash, leak and timeout reproducers go to WORK_DIR/artifacts/. The test fails when
# the fuzzer exits with anything but 0 (a crash, a sanitizer report, a leak, a
# timeout, an out-of-memory, or a signal).
foreach(required FUZZER WORK_DIR SEED_DIR)
  if(NOT DEFINED ${required})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${required}=... is required")
  endif()
endforeach()
if(NOT DEFINED SECONDS)
  set(SECONDS 5)
endif()

file(REMOVE_RECURSE "${WORK_DIR}/corpus")
file(MAKE_DIRECTORY "${WORK_DIR}/corpus" "${WORK_DIR}/artifacts")

set(arguments
  -max_total_time=${SECONDS}
  -timeout=10
  -rss_limit_mb=1024
  -print_final_stats=1
  "-artifact_prefix=${WORK_DIR}/artifacts/")
if(DEFINED DICT AND NOT DICT STREQUAL "")
  list(APPEND arguments "-dict=${DICT}")
endif()

execute_process(
  COMMAND "${FUZZER}" ${arguments} "${WORK_DIR}/corpus" "${SEED_DIR}"
  WORKING_DIRECTORY "${WORK_DIR}"
  RESULT_VARIABLE result)

# RESULT_VARIABLE is the exit code, or a text such as "Child aborted" for a signal.
if(NOT result STREQUAL "0")
  message(FATAL_ERROR "${FUZZER} failed (${result}); reproducers, if any, are in "
                      "${WORK_DIR}/artifacts/")
endif()
