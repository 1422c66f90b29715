/* Needs a symbol nothing provides (a library missing at run time): dlopen must fail with
 * the dynamic linker's reason, not crash later. */
#include <vocd/plugin.h>

void mock_symbol_nobody_defines(void);

static int undefined_init(struct voc_plugin *p, const struct voc_core_api *api,
                          const void *config, void **state)
{
    (void)p;
    (void)api;
    (void)config;
    *state = 0;
    mock_symbol_nobody_defines();
    return 0;
}

static const struct voc_plugin_descriptor undefined_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "mock_undefined",
    .version = "0.0.1",
    .init = undefined_init,
};

VOC_PLUGIN_EXPORT(undefined_descriptor);
