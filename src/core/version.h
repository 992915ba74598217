/* version.h — the release version, printed by `strata --version` and in /metrics. */
#ifndef STRATA_CORE_VERSION_H
#define STRATA_CORE_VERSION_H

#ifndef STRATA_VERSION
#define STRATA_VERSION "0.1.0"
#endif

#endif
