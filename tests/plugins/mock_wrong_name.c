/* A plugin file whose descriptor names another plugin (a renamed .so). */
#include <vocd/plugin.h>

static int wrong_name_init(struct voc_plugin *p, const struct voc_core_api *api,
                           const void *config, void **state)
{
    (void)p;
    (void)api;
    (void)config;
    *state = 0;
    return 0;
}

static const struct voc_plugin_descriptor wrong_name_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "someone_else",
    .version = "0.0.1",
    .init = wrong_name_init,
};

VOC_PLUGIN_EXPORT(wrong_name_descriptor);
