/* Built "for" a future plugin ABI: the loader must refuse it and name both versions. */
#include <vocd/plugin.h>

static int bad_abi_init(struct voc_plugin *p, const struct voc_core_api *api,
                        const void *config, void **state)
{
    (void)p;
    (void)api;
    (void)config;
    *state = 0;
    return 0;
}

static const struct voc_plugin_descriptor bad_abi_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION + 1000,
    .name = "mock_bad_abi",
    .version = "0.0.1",
    .init = bad_abi_init,
};

VOC_PLUGIN_EXPORT(bad_abi_descriptor);
