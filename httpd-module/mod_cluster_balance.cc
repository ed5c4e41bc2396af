// httpd glue: the module record, its directives and its hooks. The directives go
// in the <Proxy "balancer://NAME"> section of the balancer they configure, beside
// "ProxySet lbmethod=cluster"; their grammar is shared/balancer_options.h's, the
// nginx module's.

#include "httpd-module/mod_cluster_balance_glue.h"

#include <ap_provider.h>
#include <apr_strings.h>
#include <http_core.h>
#include <http_main.h>

#include <atomic>
#include <span>
#include <string>
#include <string_view>
#include <vector>

APLOG_USE_MODULE(cluster_balance);

namespace cb::httpd {
namespace {

constexpr std::string_view kBalancerScheme = "balancer://";

std::atomic<uint64_t> next_section_id{1};

// nullptr when the directive is where it belongs: in <Proxy "balancer://NAME">.
const char* CheckContext(const cmd_parms* cmd) {
  const std::string_view path = cmd->path == nullptr ? std::string_view{} : cmd->path;
  if (path.size() <= kBalancerScheme.size() ||
      strncasecmp(path.data(), kBalancerScheme.data(), kBalancerScheme.size()) != 0) {
    return apr_pstrcat(cmd->pool, cmd->cmd->name,
                       " belongs inside <Proxy \"balancer://NAME\">, with ProxySet "
                       "lbmethod=cluster",
                       nullptr);
  }
  return nullptr;
}

// The Section of the balancer whose <Proxy> section holds the directive.
Section& SectionFor(cmd_parms* cmd) {
  for (Section* section : LoadedSections()) {
    if (strcasecmp(section->name.c_str(), cmd->path) == 0) return *section;
  }
  auto* section = new Section();
  apr_pool_cleanup_register(
      cmd->pool, section,
      [](void* data) -> apr_status_t {
        auto* gone = static_cast<Section*>(data);
        std::erase(LoadedSections(), gone);
        delete gone;
        return APR_SUCCESS;
      },
      apr_pool_cleanup_null);
  section->name = cmd->path;
  section->id = next_section_id++;
  LoadedSections().push_back(section);
  return *section;
}

const char* Failed(cmd_parms* cmd, std::string_view what) {
  return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", std::string(what).c_str(), nullptr);
}

std::vector<std::string_view> Words(int argc, char* const argv[]) {
  return std::vector<std::string_view>(argv, argv + argc);
}

// ClusterBalance VIEW [mode=route|insert] [cookie=NAME] [path_parameter=NAME|off]
//                [slow_start=DURATION|view] [current_version_only=on|off] [webapp=NAME]
const char* SetClusterBalance(cmd_parms* cmd, void*, int argc, char* const argv[]) noexcept {
  try {
    if (const char* wrong_place = CheckContext(cmd)) return wrong_place;
    Section& section = SectionFor(cmd);
    if (!section.options.view_path.empty()) return Failed(cmd, "given twice in this section");
    cb::BalancerOptions options;
    options.insert_cookie = section.options.insert_cookie;  // ClusterBalanceCookie may come first
    const std::vector<std::string_view> words = Words(argc, argv);
    if (Status parsed = cb::ParseBalancerWords(words, options); !parsed.ok()) {
      return Failed(cmd, parsed.message());
    }
    options.view_path = ap_server_root_relative(cmd->pool, options.view_path.c_str());
    section.options = std::move(options);
    return nullptr;
  } catch (...) {
    LogException(nullptr, "ClusterBalance");
    return "ClusterBalance: out of memory";
  }
}

// ClusterBalanceCookie [name=N] [path=P] [domain=D] [max_age=T|off] [secure] ...
const char* SetClusterBalanceCookie(cmd_parms* cmd, void*, int argc, char* const argv[]) noexcept {
  try {
    if (const char* wrong_place = CheckContext(cmd)) return wrong_place;
    Section& section = SectionFor(cmd);
    if (section.cookie_configured) return Failed(cmd, "given twice in this section");
    cb::StickyCookie cookie;
    const std::vector<std::string_view> words = Words(argc, argv);
    if (Status parsed = cb::ParseStickyCookieWords(words, cookie); !parsed.ok()) {
      return Failed(cmd, parsed.message());
    }
    section.options.insert_cookie = std::move(cookie);
    section.cookie_configured = true;
    return nullptr;
  } catch (...) {
    LogException(nullptr, "ClusterBalanceCookie");
    return "ClusterBalanceCookie: out of memory";
  }
}

// ClusterBalanceRouteHeader NAME|off
const char* SetRouteHeader(cmd_parms* cmd, void*, const char* name) noexcept {
  try {
    if (const char* wrong_place = CheckContext(cmd)) return wrong_place;
    Section& section = SectionFor(cmd);
    const std::string_view value = name;
    if (value == "off") {
      section.route_header.clear();
    } else if (cb::IsCookieName(value)) {  // a token, as a header name is
      section.route_header = value;
    } else {
      return Failed(cmd, "expected a header name (a token of at most 64 bytes) or off");
    }
    return nullptr;
  } catch (...) {
    LogException(nullptr, "ClusterBalanceRouteHeader");
    return "ClusterBalanceRouteHeader: out of memory";
  }
}

// httpd's command table holds every handler as `const char* (*)()` in C++ and
// calls it with the arguments its kind (TAKE1, TAKE_ARGV) gives.
template <typename Handler>
cmd_func AsCmdFunc(Handler* handler) {
  return reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(handler));
}

const command_rec kDirectives[] = {
    AP_INIT_TAKE_ARGV("ClusterBalance", AsCmdFunc(SetClusterBalance), nullptr, ACCESS_CONF,
                      "the view file the local sidecar publishes, then mode=route|insert, "
                      "cookie=NAME, path_parameter=NAME|off, slow_start=DURATION|view, "
                      "current_version_only=on|off, webapp=NAME"),
    AP_INIT_TAKE_ARGV("ClusterBalanceCookie", AsCmdFunc(SetClusterBalanceCookie), nullptr,
                      ACCESS_CONF,
                      "the insert mode's cookie: name=, path=, domain=, max_age=, secure, "
                      "httponly=, samesite="),
    AP_INIT_TAKE1("ClusterBalanceRouteHeader", AsCmdFunc(SetRouteHeader), nullptr, ACCESS_CONF,
                  "the request header that tells the backend the chosen server's route "
                  "character (default X-Cluster-Route), or off"),
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr},
};

int PreConfig(apr_pool_t*, apr_pool_t*, apr_pool_t*) noexcept {
  if (!HookEndOfTry()) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, nullptr,
                 "cluster_balance: mod_proxy is not loaded: lbmethod=cluster has nothing to do");
  }
  return OK;
}

// A section's directives make sense together.
bool CheckSection(const Section& section, server_rec* s) {
  const char* problem = nullptr;
  if (section.options.view_path.empty()) {
    problem = "ClusterBalanceCookie or ClusterBalanceRouteHeader without ClusterBalance";
  } else if (section.cookie_configured && section.options.mode != cb::StickyMode::kInsert) {
    problem = "ClusterBalanceCookie needs ClusterBalance ... mode=insert";
  }
  if (problem == nullptr) return true;
  ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "cluster_balance: <Proxy %s>: %s",
               section.name.c_str(), problem);
  return false;
}

// What an operator would want to hear at startup about a balancer: lbmethod and
// ClusterBalance go together; stickysession would route before lbmethod=cluster;
// a member without a route is never chosen by the view.
void CheckBalancer(const proxy_balancer* balancer, server_rec* s) {
  const Section* section = SectionOf(balancer);
  const bool cluster = balancer->lbmethod != nullptr &&
                       std::string_view(balancer->lbmethod->name) == kClusterMethod.name;
  if (section != nullptr && !cluster) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "cluster_balance: %s has ClusterBalance but not ProxySet lbmethod=cluster: "
                 "the view is not used",
                 balancer->s->name);
  }
  if (!cluster) return;
  if (section == nullptr) {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "cluster_balance: %s has lbmethod=cluster but no ClusterBalance in its "
                 "<Proxy> section: httpd's own balancing chooses",
                 balancer->s->name);
  }
  if (balancer->s->sticky[0] != '\0') {
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                 "cluster_balance: %s sets stickysession=%s: mod_proxy_balancer then routes "
                 "by its own rules before lbmethod=cluster; remove stickysession (the "
                 "module keeps sessions sticky)",
                 balancer->s->name, balancer->s->sticky);
  }
  for (int i = 0; i < balancer->workers->nelts; ++i) {
    const proxy_worker* worker = APR_ARRAY_IDX(balancer->workers, i, proxy_worker*);
    if (worker->s->route[0] == '\0') {
      ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                   "cluster_balance: %s: member %s has no route=: give it its server's "
                   "route character (A for the first server of the cluster file) or id",
                   balancer->s->name, worker->s->name_ex);
    }
  }
}

// Runs for `apache2 -t` too (post_config does not): a section's mistakes are
// refused there, and the warnings about balancers are shown. httpd reads its
// configuration twice at startup; the warnings wait for the second reading.
int CheckConfig(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* main_server) noexcept {
  try {
    for (const Section* section : LoadedSections()) {
      if (!CheckSection(*section, main_server)) return HTTP_INTERNAL_SERVER_ERROR;
    }
    const bool first_reading = ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG &&
                               ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_CONFIG_TEST;
    const module* proxy = ap_find_linked_module("mod_proxy.c");
    for (server_rec* s = main_server; !first_reading && proxy != nullptr && s != nullptr;
         s = s->next) {
      const auto* conf =
          static_cast<const proxy_server_conf*>(ap_get_module_config(s->module_config, proxy));
      if (conf == nullptr || conf->balancers == nullptr) continue;
      for (int i = 0; i < conf->balancers->nelts; ++i) {
        CheckBalancer(&APR_ARRAY_IDX(conf->balancers, i, proxy_balancer), s);
      }
    }
    return OK;
  } catch (...) {
    LogException(nullptr, "checking the configuration");
    return HTTP_INTERNAL_SERVER_ERROR;
  }
}

int PostConfig(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec*) noexcept {
  FindProxyFunctions();  // without mod_proxy: PreConfig said so
  return OK;
}

void RegisterHooks(apr_pool_t* pool) noexcept {
  ap_register_provider(pool, PROXY_LBMETHOD, kClusterMethod.name, "0", &kClusterMethod);
  ap_hook_pre_config(PreConfig, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_check_config(CheckConfig, nullptr, nullptr, APR_HOOK_MIDDLE);
  ap_hook_post_config(PostConfig, nullptr, nullptr, APR_HOOK_MIDDLE);
  RegisterCookieFilter();
}

}  // namespace
}  // namespace cb::httpd

extern "C" {
module AP_MODULE_DECLARE_DATA cluster_balance_module = {
    STANDARD20_MODULE_STUFF,
    nullptr,  // per-directory configuration: the module keeps its own, by balancer
    nullptr,
    nullptr,  // per-server configuration
    nullptr,
    cb::httpd::kDirectives,
    cb::httpd::RegisterHooks,
    AP_MODULE_FLAG_NONE,
};
}
