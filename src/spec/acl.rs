//! ACL and its subcommands.

use super::*;

const CLIENT_FLAGS: Flags = f![NOSCRIPT, LOADING, STALE];
const CLIENT_ADMIN: Flags = f![ADMIN, NOSCRIPT, LOADING, STALE];
const CONFIG_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

pub(super) static COMMANDS: &[Spec] = &[container!(
    "acl",
    Acl,
    "server",
    "6.0.0",
    "A container for Access List Control commands ",
    &[
        spec!(
            "acl|cat",
            AclCat,
            -2,
            CLIENT_FLAGS,
            &["@slow"],
            "server",
            "6.0.0",
            "List the ACL categories or the commands inside a category",
            "O(1) since the categories and commands are a fixed set.",
            &[opt("categoryname", "string")]
        ),
        Spec {
            tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
            ..spec!(
                "acl|deluser",
                AclDeluser,
                -3,
                CLIENT_ADMIN,
                CONFIG_ACL,
                "server",
                "6.0.0",
                "Remove the specified ACL users and the associated rules",
                "O(1) amortized time considering the typical user.",
                &[many("username", "string")]
            )
        },
        spec!(
            "acl|dryrun",
            AclDryrun,
            -4,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "7.0.0",
            "Returns whether the user can execute the given command without executing the command.",
            "O(1).",
            &[
                a("username", "string"),
                a("command", "string"),
                opt_many("arg", "string")
            ]
        ),
        spec!(
            "acl|genpass",
            AclGenpass,
            -2,
            CLIENT_FLAGS,
            &["@slow"],
            "server",
            "6.0.0",
            "Generate a pseudorandom secure password to use for ACL users",
            "O(1)",
            &[opt("bits", "integer")]
        ),
        spec!(
            "acl|getuser",
            AclGetuser,
            3,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "6.0.0",
            "Get the rules for a specific ACL user",
            "O(N). Where N is the number of password, command and pattern rules that the user has.",
            &[a("username", "string")]
        ),
        spec!(
            "acl|list",
            AclList,
            2,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "6.0.0",
            "List the current ACL rules in ACL config file format",
            "O(N). Where N is the number of configured users.",
            &[]
        ),
        spec!(
            "acl|load",
            AclLoad,
            2,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "6.0.0",
            "Reload the ACLs from the configured ACL file",
            "O(N). Where N is the number of configured users.",
            &[]
        ),
        spec!(
            "acl|log",
            AclLog,
            -2,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "6.0.0",
            "List latest events denied because of ACLs in place",
            "O(N) with N being the number of entries shown.",
            &[group(
                "operation",
                "oneof",
                None,
                true,
                &[a("count", "integer"), token("reset", "RESET")]
            )]
        ),
        Spec {
            tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
            ..spec!(
                "acl|save",
                AclSave,
                2,
                CLIENT_ADMIN,
                CONFIG_ACL,
                "server",
                "6.0.0",
                "Save the current ACL rules in the configured ACL file",
                "O(N). Where N is the number of configured users.",
                &[]
            )
        },
        Spec {
            redact: Redact::AclSetuser,
            tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
            ..spec!(
                "acl|setuser",
                AclSetuser,
                -3,
                CLIENT_ADMIN,
                CONFIG_ACL,
                "server",
                "6.0.0",
                "Modify or create the rules for a specific ACL user",
                "O(N). Where N is the number of rules provided.",
                &[a("username", "string"), opt_many("rule", "string")]
            )
        },
        spec!(
            "acl|users",
            AclUsers,
            2,
            CLIENT_ADMIN,
            CONFIG_ACL,
            "server",
            "6.0.0",
            "List the username of all the configured ACL rules",
            "O(N). Where N is the number of configured users.",
            &[]
        ),
        spec!(
            "acl|whoami",
            AclWhoami,
            2,
            CLIENT_FLAGS,
            &["@slow"],
            "server",
            "6.0.0",
            "Return the name of the user associated to the current connection",
            "O(1)",
            &[]
        ),
        spec!(
            "acl|help",
            AclHelp,
            2,
            f![LOADING, STALE],
            &["@slow"],
            "server",
            "6.0.0",
            "Show helpful text about the different subcommands",
            "O(1)",
            &[]
        ),
    ]
)];
