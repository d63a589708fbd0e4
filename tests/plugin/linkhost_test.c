/*
 * Tests of the plugin's Link bridge setting (linkhost.h) where no Link peer
 * starts: the setting from TUTTI_LINK and from tutti__linkhost_enable, the
 * state names the status and the feed show, and a build without Link saying
 * so. (A bridge on a member, which is a Link peer on the network, runs in
 * e2e.link_plugin_test, inside network namespaces.)
 */
#include "linkhost.h"
#include "test.h"

#include <stdlib.h>

static void setting_without_a_session(void)
{
    setenv("TUTTI_LINK", "1", 1);
    tutti__linkhost_init();
    tutti__linkhost_status st;
    tutti__linkhost_status_get(&st);
    char why[200] = "";
    if (!st.available) {
        /* a plugin built without Link: the setting is refused in words */
        CHECK(!st.enabled);
        CHECK(!strcmp(tutti__linkhost_state_name(&st), "unavailable"));
        CHECK_EQ_I64(tutti__linkhost_enable(true, why, sizeof why), TUTTI_EINVAL);
        CHECK(strstr(why, "without Ableton Link") != NULL);
        return;
    }
    /* on from the environment; no member attached: nothing runs yet */
    CHECK(st.enabled && !st.running);
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "waiting"));
    CHECK_EQ_I64(tutti__linkhost_enable(false, why, sizeof why), 0);
    tutti__linkhost_status_get(&st);
    CHECK(!st.enabled && !st.running && st.b.commits == 0);
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "off"));
    CHECK_EQ_I64(tutti__linkhost_enable(true, why, sizeof why), 0);
    tutti__linkhost_detach(); /* no member: harmless */
    tutti__linkhost_status_get(&st);
    CHECK(st.enabled && !st.running && !st.error[0]);
    CHECK_EQ_I64(tutti__linkhost_enable(false, why, sizeof why), 0);
}

/* The names for a running bridge's figures. */
static void state_names(void)
{
    tutti__linkhost_status st;
    memset(&st, 0, sizeof st);
    st.available = st.enabled = true;
    snprintf(st.error, sizeof st.error, "Ableton Link could not start");
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "failed"));
    st.error[0] = 0;
    st.running = true;
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "joining"));
    st.b.joined = true;
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "standby"));
    st.b.active = true;
    CHECK(!strcmp(tutti__linkhost_state_name(&st), "active"));
}

int main(void)
{
    RUN(setting_without_a_session);
    RUN(state_names);
    TEST_END();
}
