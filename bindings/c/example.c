/* chatstore from C: open a store, import the seeds, print both endpoints.
 *
 *   cc -I include bindings/c/example.c -L target/release -lchatstore_ffi -o example
 *   LD_LIBRARY_PATH=target/release ./example /tmp/demo.db crates/chatstore/data/seeds.jsonl
 */
#include <stdio.h>
#include <string.h>

#include "chatstore.h"

static int fail(const char *what) {
    fprintf(stderr, "%s: %s (status %d)\n", what, cs_last_error_message(), cs_last_error_code());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s STORE_DIR SEEDS.jsonl\n", argv[0]);
        return 2;
    }
    cs_store *store = NULL;
    if (cs_store_open(argv[1], "{\"media_base\":\"http://localhost:82\"}", &store) != CS_STATUS_OK)
        return fail("open");
    if (cs_import_jsonl(store, argv[2], NULL) != CS_STATUS_OK) {
        cs_store_close(store);
        return fail("import");
    }
    const char *params = "{\"tenant\":2,\"employee\":2,\"page\":1,\"pagesize\":10}";
    char *json = NULL;
    if (cs_history_list(store, params, strlen(params), &json) != CS_STATUS_OK) {
        cs_store_close(store);
        return fail("history-list");
    }
    printf("%s\n", json);
    cs_string_free(json);
    const char *hash = "5f4dcc3b5aa765d61d8327deb882cf99";
    if (cs_hischat(store, 218, hash, strlen(hash), 1, &json) != CS_STATUS_OK) {
        cs_store_close(store);
        return fail("hischat");
    }
    printf("%s\n", json);
    cs_string_free(json);
    cs_store_close(store);
    return 0;
}
