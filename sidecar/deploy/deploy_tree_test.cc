#include "sidecar/deploy/deploy_tree.h"

#include <gtest/gtest.h>
