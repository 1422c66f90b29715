#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <strings.h>
#include <string.h>

const struct voc_token_config *voc_auth_check(const struct voc_config *cfg,
                                              const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strlen(token);
    while (len > 0 && token[len - 1] == ' ')
        len--;
    if (len == 0 || len > 4096)
        return NULL;
    unsigned char digest[32];
    unsigned int digest_len = 0;
    if (!EVP_Digest(token, len, digest, &digest_len, EVP_sha256(), NULL) || digest_len != 32)
        return NULL;
    /* Compare against every token without stopping early, so the time taken does not tell
     * which (or whether an earlier) entry matched. */
    const struct voc_token_config *match = NULL;
    for (size_t i = 0; i < cfg->auth.token_count; i++) {
        const struct voc_token_config *t = &cfg->auth.tokens[i];
        if (CRYPTO_memcmp(digest, t->hash, sizeof digest) == 0)
            match = t;
    }
    return match;
}
