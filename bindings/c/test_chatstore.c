/* C test suite of the chatstore ABI: both endpoints, errors, NULL arguments,
 * threads sharing a handle. Run by run-tests.sh under valgrind.
 * Prints "N passed, M failed" and exits non-zero on any failure. */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "chatstore.h"

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fprintf(stderr, " (last error: %s)\n", cs_last_error_message());   \
        }                                                                      \
    } while (0)

static int contains(const char *hay, const char *needle) {
    return hay != NULL && strstr(hay, needle) != NULL;
}

static const char *seeds;

static void test_endpoints(cs_store *store) {
    char *json = NULL;
    const char *p = "{\"tenant\":2,\"employee\":2}";
    int rc = cs_history_list(store, p, strlen(p), &json);
    CHECK(rc == CS_STATUS_OK, "history-list rc %d", rc);
    CHECK(contains(json, "\"total\":3"), "%s", json);
    CHECK(contains(json, "\"avatar_image\":\"http://localhost:82/addons/yun_shop/static/images/photo-mr.jpg\""), "%s", json);
    CHECK(contains(json, "\"last_updated_at\":\"2021-02-14 10:56:07\""), "%s", json);
    cs_string_free(json);

    json = NULL;
    p = "{\"tenant\":2,\"user_name\":\"185-1669\"}";
    rc = cs_history_list(store, p, strlen(p), &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":1"), "%s", json ? json : "(null)");
    cs_string_free(json);

    json = NULL;
    const char *hash = "5f4dcc3b5aa765d61d8327deb882cf99";
    rc = cs_hischat(store, 218, hash, strlen(hash), 1, &json);
    CHECK(rc == CS_STATUS_OK, "hischat rc %d", rc);
    CHECK(contains(json, "\"status\":1") && contains(json, "a18e6636339533c68691e5d782c85370"), "%s", json);
    CHECK(contains(json, "\"cha_id\":\"185185\""), "%s", json);
    cs_string_free(json);

    json = NULL;
    rc = cs_hischat(store, 218, "", 0, 1, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "Khong co ma bao mat"), "%s", json ? json : "(null)");
    cs_string_free(json);

    json = NULL;
    rc = cs_messages(store, 2, 1, 1, 20, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":2"), "%s", json ? json : "(null)");
    cs_string_free(json);

    json = NULL;
    rc = cs_search_members(store, 2, "\xe5\xb0\x8f", 3, &json); /* 小 */
    CHECK(rc == CS_STATUS_OK && contains(json, "\"uid\":2671"), "%s", json ? json : "(null)");
    cs_string_free(json);
}

static void test_writes(cs_store *store) {
    uint64_t id = 0;
    const char *m = "{\"tenant\":2,\"session_id\":4,\"content\":\"hello\",\"time\":1800000000}";
    int rc = cs_append_message(store, m, strlen(m), &id);
    CHECK(rc == CS_STATUS_OK && id == 11, "append rc %d id %llu", rc, (unsigned long long)id);

    const char *s = "{\"tenant\":2,\"uid\":2669,\"agent_id\":2}";
    rc = cs_upsert_session(store, s, strlen(s), &id);
    CHECK(rc == CS_STATUS_OK && id == 5, "session rc %d id %llu", rc, (unsigned long long)id);
    rc = cs_delete_session(store, 2, 5);
    CHECK(rc == CS_STATUS_OK, "delete rc %d", rc);

    char *json = NULL;
    rc = cs_check(store, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"ok\":true"), "%s", json ? json : "(null)");
    cs_string_free(json);
}

/* Read state: appends count as unread, cs_mark_read clears them, the live
   list shows them. */
static void test_read_state(cs_store *store) {
    uint64_t id = 0, unread = 99;
    const char *m = "{\"tenant\":2,\"session_id\":4,\"sender\":\"member\",\"content\":\"在吗\",\"time\":1800000100}";
    int rc = cs_append_message(store, m, strlen(m), &id);
    CHECK(rc == CS_STATUS_OK, "append rc %d", rc);
    char *json = NULL;
    rc = cs_live_sessions(store, 2, 2, 1, 10, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"unread_by_agent\":") && contains(json, "\"total\":3"), "%s",
          json ? json : "(null)");
    cs_string_free(json);
    rc = cs_mark_read(store, 2, 4, CS_READER_AGENT, id, &unread);
    CHECK(rc == CS_STATUS_OK && unread == 0, "rc %d unread %llu", rc, (unsigned long long)unread);
    rc = cs_mark_read(store, 2, 4, CS_READER_MEMBER, id, NULL);
    CHECK(rc == CS_STATUS_OK, "rc %d", rc);
    rc = cs_mark_read(store, 2, 4, 7, id, NULL);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "reader"), "rc %d", rc);
    rc = cs_mark_read(store, 2, 999, CS_READER_AGENT, 1, NULL);
    CHECK(rc == CS_STATUS_NOT_FOUND, "rc %d", rc);
    /* Search inside message text. */
    const char *sq = "{\"tenant\":2,\"q\":\"在吗\"}";
    json = NULL;
    rc = cs_search_messages(store, sq, strlen(sq), &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":2") && contains(json, "在吗？订单"), "%s", json ? json : "(null)");
    cs_string_free(json);
    const char *short_q = "{\"tenant\":2,\"q\":\"在\"}";
    json = NULL;
    rc = cs_search_messages(store, short_q, strlen(short_q), &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && json == NULL && contains(cs_last_error_message(), "session_id"), "rc %d", rc);
    /* Recall keeps the message, flagged; delete takes it out of the list. */
    rc = cs_recall_message(store, 2, 4, id);
    CHECK(rc == CS_STATUS_OK, "recall rc %d", rc);
    json = NULL;
    rc = cs_messages(store, 2, 4, 1, 100, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"recalled\":true"), "%s", json ? json : "(null)");
    cs_string_free(json);
    rc = cs_delete_message(store, 2, 4, id);
    CHECK(rc == CS_STATUS_OK, "delete rc %d", rc);
    json = NULL;
    rc = cs_messages(store, 2, 4, 1, 100, &json);
    CHECK(rc == CS_STATUS_OK && !contains(json, "在吗"), "%s", json ? json : "(null)");
    cs_string_free(json);
    rc = cs_delete_message(store, 2, 4, id);
    CHECK(rc == CS_STATUS_NOT_FOUND, "rc %d", rc);
}

static void test_errors(cs_store *store) {
    char *json = NULL;
    uint64_t id = 0;
    /* NULL arguments */
    int rc = cs_history_list(NULL, "{}", 2, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "store"), "rc %d", rc);
    rc = cs_history_list(store, NULL, 0, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "params"), "rc %d", rc);
    rc = cs_history_list(store, "{\"tenant\":2}", 12, NULL);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "out_json"), "rc %d", rc);
    rc = cs_store_open(NULL, NULL, NULL);
    CHECK(rc == CS_STATUS_INVALID_INPUT, "rc %d", rc);
    CHECK(json == NULL, "no output on error");
    /* Bad JSON, invalid UTF-8, embedded NUL, missing records */
    rc = cs_history_list(store, "{\"tenant\":", 10, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT, "rc %d", rc);
    rc = cs_history_list(store, "{\"tenant\":2,\"pgae\":1}", 21, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "pgae"), "rc %d", rc);
    rc = cs_search_members(store, 2, "\xff\xfe", 2, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "UTF-8"), "rc %d", rc);
    /* A raw NUL byte inside the JSON (binary-safe length): refused, not truncated. */
    const char raw_nul[] = "{\"tenant\":2,\"uid\":1,\"nickname\":\"a\0b\"}";
    rc = cs_upsert_member(store, raw_nul, sizeof raw_nul - 1);
    CHECK(rc == CS_STATUS_INVALID_INPUT, "rc %d", rc);
    const char nul_member[] = "{\"tenant\":2,\"uid\":1,\"nickname\":\"a\\u0000b\"}";
    rc = cs_upsert_member(store, nul_member, strlen(nul_member));
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "NUL"), "rc %d", rc);
    /* A record is a JSON object: an array is not taken field by field. */
    const char *array_member = "[2,77,\"x\"]";
    rc = cs_upsert_member(store, array_member, strlen(array_member));
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "must be a JSON object"), "rc %d", rc);
    /* A key given twice is refused, not "last one wins". */
    char *twice_json = NULL;
    const char *twice = "{\"tenant\":2,\"tenant\":3}";
    rc = cs_history_list(store, twice, strlen(twice), &twice_json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && twice_json == NULL && contains(cs_last_error_message(), "appears twice"),
          "rc %d", rc);
    /* Messages from JSON parameters: ids checked as history-list's are. */
    char *msgs = NULL;
    const char *bad_tenant = "{\"tenant\":\"2abc\",\"session_id\":4}";
    rc = cs_messages_json(store, bad_tenant, strlen(bad_tenant), &msgs);
    CHECK(rc == CS_STATUS_INVALID_INPUT && msgs == NULL && contains(cs_last_error_message(), "tenant"), "rc %d", rc);
    const char *lenient = "{\"tenant\":2,\"session_id\":4,\"pagesize\":0}";
    rc = cs_messages_json(store, lenient, strlen(lenient), &msgs);
    CHECK(rc == CS_STATUS_OK && contains(msgs, "\"pagesize\":20"), "rc %d %s", rc, msgs ? msgs : "(null)");
    cs_string_free(msgs);
    /* Over a size limit: the field is named (docs/RELIABILITY.md). */
    char long_member[400];
    snprintf(long_member, sizeof long_member, "{\"tenant\":2,\"uid\":1,\"nickname\":\"%0256d\"}", 0);
    rc = cs_upsert_member(store, long_member, strlen(long_member));
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "nickname"), "rc %d", rc);
    /* A file is not a store directory. */
    cs_store *not_a_store = NULL;
    char file_path[] = "/tmp/cs-not-a-store-XXXXXX";
    int fd = mkstemp(file_path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    rc = cs_store_open(file_path, NULL, &not_a_store);
    CHECK(rc == CS_STATUS_INVALID_INPUT && not_a_store == NULL && contains(cs_last_error_message(), "is a file"), "rc %d", rc);
    unlink(file_path);
    /* Negative and huge numbers: a tenant is refused naming the key; page and
       pagesize follow the platform (default 1 and 10, clamp at 100). */
    rc = cs_history_list(store, "{\"tenant\":-1}", 13, &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && json == NULL && contains(cs_last_error_message(), "tenant"), "rc %d", rc);
    const char *huge = "{\"tenant\":18446744073709551616}";
    rc = cs_history_list(store, huge, strlen(huge), &json);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "tenant"), "rc %d", rc);
    const char *neg_page = "{\"tenant\":2,\"page\":-3,\"pagesize\":-1}";
    rc = cs_history_list(store, neg_page, strlen(neg_page), &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"current_page\":1") && contains(json, "\"per_page\":10"), "%s", json ? json : "(null)");
    cs_string_free(json);
    json = NULL;
    const char *big_page = "{\"tenant\":2,\"page\":9223372036854775807,\"pagesize\":1000}";
    rc = cs_history_list(store, big_page, strlen(big_page), &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"per_page\":100") && contains(json, "\"data\":[]"), "%s", json ? json : "(null)");
    cs_string_free(json);
    json = NULL;
    /* A bad record value is refused naming the field, and nothing is written. */
    const char *bad_type = "{\"tenant\":2,\"session_id\":4,\"content\":\"x\",\"content_type\":9}";
    rc = cs_append_message(store, bad_type, strlen(bad_type), &id);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "content_type"), "rc %d", rc);
    rc = cs_messages(store, 2, 4, 1, 100, &json);
    CHECK(rc == CS_STATUS_OK && !contains(json, "\"content_type\":9"), "%s", json ? json : "(null)");
    cs_string_free(json);
    json = NULL;
    const char *orphan = "{\"tenant\":2,\"uid\":999}";
    rc = cs_upsert_session(store, orphan, strlen(orphan), &id);
    CHECK(rc == CS_STATUS_NOT_FOUND && contains(cs_last_error_message(), "member 999"), "rc %d", rc);
    rc = cs_delete_agent(store, 2, 2);
    CHECK(rc == CS_STATUS_CONFLICT, "rc %d", rc);
    rc = cs_messages(store, 2, 999, 1, 20, &json);
    CHECK(rc == CS_STATUS_NOT_FOUND, "rc %d", rc);
    rc = cs_import_jsonl(store, "/nonexistent/file.jsonl", NULL);
    CHECK(rc == CS_STATUS_IO, "rc %d", rc);
    /* A successful call clears the last error. */
    rc = cs_store_flush(store);
    CHECK(rc == CS_STATUS_OK && cs_last_error_code() == 0 && strlen(cs_last_error_message()) == 0, "rc %d", rc);
    CHECK(json == NULL, "no output on error");
    cs_store_close(NULL); /* no-op */
    cs_string_free(NULL); /* no-op */
}

/* A second handle on the same store shares it (any number of handles, in
   any number of processes); closing it leaves the first working. */
/* A store created without the message-text index: tenant-wide search is
   refused (CONFLICT), a session is searched, cs_store_info tells. */
static void test_without_text_index(cs_store *store, const char *base) {
    char *json = NULL;
    int rc = cs_store_info(store, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"format\":6") && contains(json, "\"text_index\":true"), "%s",
          json ? json : "(null)");
    cs_string_free(json);
    char dir[512];
    snprintf(dir, sizeof dir, "%s.noindex", base);
    cs_store *plain = NULL;
    rc = cs_store_open(dir, "{\"text_index\":false,\"linger_ms\":0}", &plain);
    CHECK(rc == CS_STATUS_OK && plain != NULL, "open rc %d", rc);
    if (plain == NULL) return;
    char *summary = NULL;
    rc = cs_import_jsonl(plain, seeds, &summary);
    CHECK(rc == CS_STATUS_OK, "import rc %d", rc);
    cs_string_free(summary);
    const char *q = "{\"tenant\":2,\"q\":\"\xe8\xae\xa2\xe5\x8d\x95\"}"; /* 订单 */
    json = NULL;
    rc = cs_search_messages(plain, q, strlen(q), &json);
    CHECK(rc == CS_STATUS_CONFLICT && json == NULL && contains(cs_last_error_message(), "text_index"), "rc %d", rc);
    q = "{\"tenant\":2,\"session_id\":1,\"q\":\"\xe8\xae\xa2\xe5\x8d\x95\"}";
    rc = cs_search_messages(plain, q, strlen(q), &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":1"), "%s", json ? json : "(null)");
    cs_string_free(json);
    json = NULL;
    rc = cs_store_info(plain, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"format\":6") && contains(json, "\"text_index\":false"), "%s",
          json ? json : "(null)");
    cs_string_free(json);
    rc = cs_store_info(plain, NULL);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "out_json"), "rc %d", rc);
    cs_store_close(plain);
}

static void test_second_handle(cs_store *store, const char *dir) {
    cs_store *second = NULL;
    int rc = cs_store_open(dir, NULL, &second);
    CHECK(rc == CS_STATUS_OK && second != NULL, "rc %d %s", rc, cs_last_error_message());
    if (second == NULL) return;
    int32_t owner = -1;
    rc = cs_store_is_owner(second, &owner);
    CHECK(rc == CS_STATUS_OK && owner == 1, "rc %d owner %d", rc, owner);
    rc = cs_store_is_owner(second, NULL);
    CHECK(rc == CS_STATUS_INVALID_INPUT, "rc %d", rc);
    char *json = NULL;
    rc = cs_history_list(second, "{\"tenant\":2,\"employee\":2}", 25, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":3"), "%s", json ? json : "(null)");
    cs_string_free(json);
    cs_store_close(second);
    json = NULL;
    rc = cs_history_list(store, "{\"tenant\":2,\"employee\":2}", 25, &json);
    CHECK(rc == CS_STATUS_OK && contains(json, "\"total\":3"), "%s", json ? json : "(null)");
    cs_string_free(json);
}

/* A sled store locked by something that does not serve it (a plain flock on
   its file, as sled takes): CS_STATUS_LOCKED naming the path, no handle. */
static void test_locked_unserved(const char *dir) {
    char file[512];
    snprintf(file, sizeof file, "%s/db", dir);
    int fd = open(file, O_RDONLY);
    CHECK(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0, "flock %s", file);
    cs_store *locked = NULL;
    int rc = cs_store_open(dir, "{\"attach_timeout_ms\":100}", &locked);
    CHECK(rc == CS_STATUS_LOCKED && locked == NULL && contains(cs_last_error_message(), "locked"), "rc %d %s", rc,
          cs_last_error_message());
    close(fd);
}

/* A store written by a newer format version is refused, with no handle. */
static void test_newer_format(const char *dir) {
    cs_store *newer = NULL;
    int rc = cs_store_open(dir, NULL, &newer);
    CHECK(rc == CS_STATUS_FORMAT && newer == NULL && contains(cs_last_error_message(), "newer"), "rc %d %s", rc,
          cs_last_error_message());
}

static void *reader(void *arg) {
    cs_store *store = arg;
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        char *json = NULL;
        const char *p = "{\"tenant\":2,\"order\":\"recent\"}";
        if (cs_history_list(store, p, strlen(p), &json) != CS_STATUS_OK || !contains(json, "\"result\":1"))
            ok = 0;
        cs_string_free(json);
    }
    return ok ? arg : NULL;
}

static void test_threads(cs_store *store) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, reader, store);
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        if (r == NULL) ok = 0;
    }
    CHECK(ok, "four threads share one handle");
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s STORE_DIR SEEDS.jsonl NEWER_FORMAT_STORE_DIR CLOSED_STORE_DIR\n", argv[0]);
        return 2;
    }
    seeds = argv[2];
    CHECK(cs_abi_version() == 1, "abi %u", cs_abi_version());
    cs_store *store = NULL;
    int rc = cs_store_open(argv[1], "{\"media_base\":\"http://localhost:82\"}", &store);
    CHECK(rc == CS_STATUS_OK && store != NULL, "open rc %d", rc);
    if (store == NULL) return 1;
    char *summary = NULL;
    rc = cs_import_jsonl(store, seeds, &summary);
    CHECK(rc == CS_STATUS_OK && contains(summary, "\"lines\":20"), "%s", summary ? summary : "(null)");
    cs_string_free(summary);
    cs_store *bad = NULL;
    rc = cs_store_open(argv[1], "{\"durability\":\"sometimes\"}", &bad);
    CHECK(rc == CS_STATUS_INVALID_INPUT && contains(cs_last_error_message(), "durability"), "rc %d", rc);
    test_endpoints(store);
    test_writes(store);
    test_read_state(store);
    test_errors(store);
    test_without_text_index(store, argv[1]);
    test_second_handle(store, argv[1]);
    test_newer_format(argv[3]);
    test_locked_unserved(argv[4]);
    test_threads(store);
    cs_store_close(store);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
