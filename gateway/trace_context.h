#include "middleware/trace_context.h"
