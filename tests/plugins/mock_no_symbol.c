/* A shared object that forgot VOC_PLUGIN_EXPORT: it exports no descriptor at all. */
#include <vocd/plugin.h>

int mock_no_symbol_answer(void);

int mock_no_symbol_answer(void)
{
    return 42;
}
