#include "gateway/stats.h"

struct tg_stats_registry tg_stats;
