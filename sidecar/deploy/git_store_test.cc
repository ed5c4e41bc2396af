#include "sidecar/deploy/git_store.h"

#include <gtest/gtest.h>
