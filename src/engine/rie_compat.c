/* Whether an engine read from a file may run on this library and device (contract in rie_format.h). */
#include <string.h>

#include "engine/rie_format.h"

ri_status ri__rie_check_compat(const ri__rie_content *c, const char *host_fingerprint, ri__err *err) {
  if (!c || !host_fingerprint)
    return ri__err_set(err, RI_ERR_INVALID_ARG, "engine compatibility check: NULL content or fingerprint");
  const char *built_ver = c->library_version ? c->library_version : "(unknown)";
  if (!c->library_version || strcmp(c->library_version, ri_version()) != 0)
    return ri__err_set(err, RI_ERR_STALE,
                       "engine was built by runinfer %s but this library is %s; rebuild the engine with this "
                       "version",
                       built_ver, ri_version());
  if (!c->fingerprint || strcmp(c->fingerprint, host_fingerprint) != 0)
    return ri__err_set(
        err, RI_ERR_STALE,
        "engine was built for device '%s' with fingerprint '%s' but this device's fingerprint is "
        "'%s'; rebuild the engine on this machine",
        c->device ? c->device : "?", c->fingerprint ? c->fingerprint : "(none)", host_fingerprint);
  return RI_OK;
}
