/* ee_version_features() and the message of a backend left out of the build. */
#include "core.h"
#include "features.h"

#include "execengine/version.h"

#ifndef EE_FEATURES
#define EE_FEATURES "sqlite memory postgres redis idn curl"
#endif

const char *ee_version_features(void)
{
    return EE_FEATURES;
}

ee_status ee__not_built(const char *what, const char *feature, const char *option)
{
    return ee__error(EE_ENOTSUPPORTED, "%s: libexecengine was built without %s (%s=OFF; "
                     "ee_version_features() lists what it has: %s)", what, feature, option,
                     EE_FEATURES);
}
