#include "sidecar/deploy/live_tree.h"
