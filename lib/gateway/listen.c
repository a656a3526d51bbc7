/* placeholder, replaced below */
#include "gateway/gateway_internal.h"
void ee__gateway_listener_stop(g_state *st) { (void)st; }
