/* Names the module for nginx's loader (load_module): what nginx's configure would
 * generate as <module>_modules.c for an --add-dynamic-module build. */
#include <ngx_config.h>
#include <ngx_core.h>

extern ngx_module_t ngx_http_cluster_balance_module;

ngx_module_t* ngx_modules[] = {
    &ngx_http_cluster_balance_module,
    NULL,
};

char* ngx_module_names[] = {
    "ngx_http_cluster_balance_module",
    NULL,
};

char* ngx_module_order[] = {
    NULL,
};
