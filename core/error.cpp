// Context-adding rethrow for polymoe::Error and its categories.
#include "polymoe/error.h"

#include <exception>

namespace polymoe {

namespace {
// Messages carry their category tag first ("format: ..."); keep the tag in front of the context.
std::string withContext(const std::string &context, const std::string &what, const char *tag)
{
    const std::string t = std::string(tag) + ": ";
    if (what.rfind(t, 0) == 0)
        return context + ": " + what.substr(t.size());
    return context + ": " + what;
}
} // namespace

void rethrowWithContext(const std::string &context)
{
    try {
        throw;
    } catch (const Cancelled &) {
        throw;
    } catch (const FormatError &e) {
        throw FormatError(withContext(context, e.what(), "format"));
    } catch (const ConfigError &e) {
        throw ConfigError(withContext(context, e.what(), "config"));
    } catch (const IoError &e) {
        throw IoError(withContext(context, e.what(), "io"));
    } catch (const PluginError &e) {
        throw PluginError(withContext(context, e.what(), "plugin"));
    } catch (const CudaError &e) {
        throw CudaError(withContext(context, e.what(), "cuda"));
    } catch (const Error &e) {
        throw Error(context + ": " + e.what());
    } catch (const std::exception &e) {
        throw Error(context + ": " + e.what());
    }
}

} // namespace polymoe
