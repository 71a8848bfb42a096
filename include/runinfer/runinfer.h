/* runinfer: umbrella header. */
#ifndef RUNINFER_RUNINFER_H
#define RUNINFER_RUNINFER_H
#include "runinfer/status.h"
#include "runinfer/types.h"
#include "runinfer/engine.h"
#include "runinfer/vision.h"
#include "runinfer/pipeline.h"
#endif
