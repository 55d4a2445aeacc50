//! WEBHOOK: push subscriptions that POST matching messages to an HTTP endpoint (fanout's
//! own family; no Redis counterpart). Every subcommand is @admin and @dangerous: a
//! webhook makes the server open outgoing connections.

use super::*;

const HOOK_FLAGS: Flags = f![ADMIN, NOSCRIPT, LOADING, STALE];
const HOOK_ACL: &[&str] = &["@admin", "@slow", "@dangerous", "@pubsub"];

/// `[SECRET s] [RETRIES n] [TIMEOUT ms] [MAXQUEUE bytes] [POLICY ...] [DEADLETTER key]`.
const ADD_ARGS: &[Arg] = &[
    a("name", "string"),
    a("url", "string"),
    a("pattern", "pattern"),
    Arg {
        token: Some("SECRET"),
        ..opt("secret", "string")
    },
    Arg {
        token: Some("RETRIES"),
        ..opt("retries", "integer")
    },
    Arg {
        token: Some("TIMEOUT"),
        ..opt("timeout", "integer")
    },
    Arg {
        token: Some("MAXQUEUE"),
        ..opt("maxqueue", "integer")
    },
    group(
        "policy",
        "oneof",
        Some("POLICY"),
        true,
        &[
            token("drop-oldest", "DROP-OLDEST"),
            token("drop-newest", "DROP-NEWEST"),
            token("disconnect", "DISCONNECT"),
        ],
    ),
    Arg {
        token: Some("DEADLETTER"),
        ..opt("deadletter", "string")
    },
];

pub(super) static COMMANDS: &[Spec] = &[container!(
    "webhook",
    Webhook,
    "pubsub",
    "fanout 0.1.0",
    "A container for webhook (push subscription) commands",
    &[
        Spec {
            redact: Redact::WebhookSecret,
            ..spec!(
                "webhook|add",
                WebhookAdd,
                -5,
                HOOK_FLAGS,
                HOOK_ACL,
                "pubsub",
                "fanout 0.1.0",
                "Create (or replace) a webhook that POSTs every message published to channels matching a pattern to a URL",
                "O(1)",
                ADD_ARGS
            )
        },
        spec!(
            "webhook|del",
            WebhookDel,
            3,
            HOOK_FLAGS,
            HOOK_ACL,
            "pubsub",
            "fanout 0.1.0",
            "Delete a webhook, discarding its queued messages",
            "O(1)",
            &[a("name", "string")]
        ),
        spec!(
            "webhook|list",
            WebhookList,
            2,
            HOOK_FLAGS,
            HOOK_ACL,
            "pubsub",
            "fanout 0.1.0",
            "List the webhooks' names, sorted",
            "O(N) where N is the number of webhooks",
            &[]
        ),
        spec!(
            "webhook|info",
            WebhookInfo,
            3,
            HOOK_FLAGS,
            HOOK_ACL,
            "pubsub",
            "fanout 0.1.0",
            "Show a webhook's settings, state and delivery counters",
            "O(1)",
            &[a("name", "string")]
        ),
        spec!(
            "webhook|help",
            WebhookHelp,
            2,
            f![LOADING, STALE],
            &["@slow"],
            "pubsub",
            "fanout 0.1.0",
            "Show helpful text about the different subcommands",
            "O(1)",
            &[]
        ),
    ]
)];
