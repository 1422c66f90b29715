#include "t2s_dict.h"

#include <opencc/Config.hpp>
#include <opencc/ConversionChain.hpp>
#include <opencc/Converter.hpp>
#include <opencc/DictGroup.hpp>
#include <opencc/Exception.hpp>
#include <opencc/Lexicon.hpp>
#include <opencc/MaxMatchSegmentation.hpp>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace
{

/* A group (TSPhrases + TSCharacters) is walked down to its member dictionaries: those are
 * the ones whose lexicons OpenCC builds when it loads them. */
void collect(const opencc::DictPtr &dict, std::vector<std::string> &keys)
{
    if (!dict)
        return;
    if (auto group = std::dynamic_pointer_cast<opencc::DictGroup>(dict)) {
        for (const opencc::DictPtr &member : group->GetDicts())
            collect(member, keys);
        return;
    }
    opencc::LexiconPtr lexicon = dict->GetLexicon();
    if (!lexicon)
        return;
    for (size_t i = 0; i < lexicon->Length(); i++)
        keys.push_back(lexicon->At(i)->Key());
}

char *copy_string(const std::string &s)
{
    char *out = static_cast<char *>(std::malloc(s.size() + 1));
    if (out)
        std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
}

} // namespace

extern "C" int voc_t2s_dict_keys(const char *config_path, char ***keys, size_t *count, char **err)
{
    *keys = nullptr;
    *count = 0;
    if (err)
        *err = nullptr;
    std::vector<std::string> found;
    try {
        opencc::Config config;
        opencc::ConverterPtr converter = config.NewFromFile(config_path);
        auto segmentation =
            std::dynamic_pointer_cast<opencc::MaxMatchSegmentation>(converter->GetSegmentation());
        if (segmentation)
            collect(segmentation->GetDict(), found);
        for (const opencc::ConversionPtr &conversion :
             converter->GetConversionChain()->GetConversions())
            collect(conversion->GetDict(), found);
    } catch (const opencc::Exception &e) { /* not a std::exception */
        if (err)
            *err = copy_string(std::string(config_path) + ": " + e.what());
        return -1;
    } catch (const std::exception &e) {
        if (err)
            *err = copy_string(std::string(config_path) + ": " + e.what());
        return -1;
    } catch (...) { /* nothing may unwind into C */
        if (err)
            *err = copy_string(std::string(config_path) + ": cannot load the dictionaries");
        return -1;
    }
    char **out = static_cast<char **>(std::calloc(found.size() ? found.size() : 1, sizeof *out));
    if (!out)
        goto nomem;
    for (size_t i = 0; i < found.size(); i++) {
        if (!(out[i] = copy_string(found[i]))) {
            voc_t2s_dict_keys_free(out, i);
            goto nomem;
        }
    }
    *keys = out;
    *count = found.size();
    return 0;
nomem:
    if (err)
        *err = copy_string("out of memory");
    return -1;
}

extern "C" void voc_t2s_dict_keys_free(char **keys, size_t count)
{
    for (size_t i = 0; i < count && keys; i++)
        std::free(keys[i]);
    std::free(keys);
}
