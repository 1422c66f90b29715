/* init() fails after logging why, as a plugin with a bad setting would. */
#include <vocd/plugin.h>

static int init_fail_init(struct voc_plugin *p, const struct voc_core_api *api,
                          const void *config, void **state)
{
    (void)config;
    (void)state;
    api->log(p, VOC_PLOG_ERROR, "mock_init_fail: cannot reach the upstream system");
    return -1;
}

static const struct voc_plugin_descriptor init_fail_descriptor = {
    .abi_version = VOC_PLUGIN_ABI_VERSION,
    .name = "mock_init_fail",
    .version = "0.0.1",
    .init = init_fail_init,
};

VOC_PLUGIN_EXPORT(init_fail_descriptor);
