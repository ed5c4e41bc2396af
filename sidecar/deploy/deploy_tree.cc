#include "sidecar/deploy/deploy_tree.h"
