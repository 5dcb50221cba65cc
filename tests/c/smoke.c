/* C smoke test of the shard client DLL: create, connect, wait for "welcome",
 * answer the content offer, register an RPC callback, chat and see the echo,
 * send an upstream RPC, destroy.
 * Usage: smoke ADDR DIR   (DIR holds the player's key and runtime cache).
 * Later (plugin host + bundle streaming): also wait for an "rpc" event,
 * enabled by passing a third argument naming the expected RPC. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shard_client.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int fail(const char *what, int rc) {
    char msg[512];
    shard_client_last_error(NULL, msg, sizeof msg);
    fprintf(stderr, "smoke: %s failed (%d): %s\n", what, rc, msg);
    return 1;
}

/* Polls until an event containing every needle arrives (10 s). */
static int wait_for(ShardClient *c, const char *needle1, const char *needle2) {
    char buf[256];
    for (int i = 0; i < 1000; i++) {
        size_t len = 0;
        int rc = shard_client_poll_event(c, buf, sizeof buf, &len);
        if (rc == SHARD_ERR_BUFFER_TOO_SMALL) {
            /* Exercise the big-buffer path: the event is still queued. */
            char big[65536];
            if (len > sizeof big) return fail("event larger than 64 KiB", rc);
            rc = shard_client_poll_event(c, big, sizeof big, &len);
            if (rc != SHARD_EVENT) return fail("poll_event (retry)", rc);
            printf("event: %s\n", big);
            if (strstr(big, needle1) && (!needle2 || strstr(big, needle2))) return 0;
            continue;
        }
        if (rc < 0) return fail("poll_event", rc);
        if (rc == SHARD_EVENT) {
            printf("event: %s\n", buf);
            if (strstr(buf, needle1) && (!needle2 || strstr(buf, needle2))) return 0;
            if (strstr(buf, "\"event\":\"disconnected\"")) {
                fprintf(stderr, "smoke: disconnected while waiting for %s\n", needle1);
                return 1;
            }
            continue;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "smoke: timed out waiting for %s\n", needle1);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s ADDR DIR [RPC]\n", argv[0]);
        return 2;
    }
    char config[2048];
    snprintf(config, sizeof config,
             "{\"addr\":\"%s\",\"name\":\"c_player\",\"identity\":\"%s/identity.pem\","
             "\"cache_dir\":\"%s/runtime_cache\"}",
             argv[1], argv[2], argv[2]);

    ShardClient *c = shard_client_create(config);
    if (!c) return fail("create", 0);
    int rc = shard_client_connect(c);
    if (rc != SHARD_OK) return fail("connect", rc);
    if (wait_for(c, "\"event\":\"welcome\"", NULL)) return 1;
    /* With a plugin to expect: the player is asked first (nothing is fetched
       before the answer), then its bundle is installed and the game is asked
       to reload that plugin's scripts before we go on. */
    if (argc > 3) {
        if (wait_for(c, "\"event\":\"content_offer\"", "\"needs_answer\":true")) return 1;
        if (shard_client_answer_offer(c, 7) != SHARD_ERR_INVALID_ARGUMENT) {
            fprintf(stderr, "smoke: a bad answer was not refused\n");
            return 1;
        }
        rc = shard_client_answer_offer(c, SHARD_OFFER_ACCEPT);
        if (rc != SHARD_OK) return fail("answer_offer", rc);
        if (wait_for(c, "\"event\":\"reload_scripts\"", NULL)) return 1;
    }
    /* No offer is waiting now: answering is an error, not a crash. */
    if (shard_client_answer_offer(c, SHARD_OFFER_DECLINE) != SHARD_ERR_NO_OFFER) {
        fprintf(stderr, "smoke: answering without an offer was not refused\n");
        return 1;
    }

    rc = shard_client_register_rpc(c, "hexbar", "HexBarStatus");
    if (rc != SHARD_OK) return fail("register_rpc", rc);
    rc = shard_client_send_position(c, 1.0f, 2.0f, 3.0f, 90.0f);
    if (rc != SHARD_OK) return fail("send_position", rc);
    rc = shard_client_send_chat(c, "hello from C");
    if (rc != SHARD_OK) return fail("send_chat", rc);
    if (wait_for(c, "\"event\":\"chat\"", "hello from C")) return 1;

    if (argc > 3 && wait_for(c, "\"event\":\"rpc\"", argv[3])) return 1;

    if (argc > 3) {
        /* Upstream RPC: a name the plugin's scripts do not send is refused
           before anything is sent; a declared one reaches its handler, which
           answers with an RPC. */
        rc = shard_client_send_rpc(c, "hexbar", "Cheat", "{}");
        if (rc != SHARD_ERR_RPC_REFUSED) return fail("send_rpc (undeclared name accepted)", rc);
        char why[512];
        shard_client_last_error(NULL, why, sizeof why);
        printf("send_rpc refused: %s\n", why);
        rc = shard_client_send_rpc(c, NULL, "HexBarPing", "{\"x\": \"from C rpc\"}");
        if (rc != SHARD_OK) return fail("send_rpc", rc);
        if (wait_for(c, "\"event\":\"rpc\"", "pong from C rpc")) return 1;
    }

    rc = shard_client_destroy(c);
    if (rc != SHARD_OK) return fail("destroy", rc);
    /* A destroyed handle is detected, not dereferenced. */
    if (shard_client_destroy(c) != SHARD_ERR_INVALID_HANDLE) {
        fprintf(stderr, "smoke: double destroy was not detected\n");
        return 1;
    }
    printf("smoke: ok\n");
    return 0;
}
