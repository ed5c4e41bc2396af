#include "sidecar/deploy/git_store.h"
