/* Bearer tokens: the config holds only SHA-256 hashes; a presented token is hashed and
 * compared in constant time against every configured hash. */
#ifndef VOC_AUTH_H
#define VOC_AUTH_H

#include "config.h"

/* The token configuration matching an `Authorization: Bearer ...` header value, or NULL
 * (absent, malformed, unknown). */
const struct voc_token_config *voc_auth_check(const struct voc_config *cfg,
                                              const char *authorization);

#endif
