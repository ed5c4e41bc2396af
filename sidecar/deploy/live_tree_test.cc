#include "sidecar/deploy/live_tree.h"

#include <gtest/gtest.h>
