//! The interactive-UI allowances of the policy (input callbacks, text and
//! layout setters, pointer accessors) and each abuse of them.

use shard_reds::policy::{INPUT_EVENTS, METHOD_SIGNATURES};
use shard_reds::{Rule, check_script};

fn rules(src: &str) -> Vec<(Rule, String)> {
    check_script("t.reds", src)
        .diagnostics
        .into_iter()
        .map(|d| (d.rule, d.message))
        .collect()
}

fn accepted(src: &str) {
    let r = rules(src);
    assert!(r.is_empty(), "{src}\n{r:?}");
}

fn refused(src: &str, rule: Rule) {
    let r = rules(src);
    assert!(
        r.iter().any(|(x, _)| *x == rule),
        "{src}\nwanted {rule}, got {r:?}"
    );
}

/// A button class whose `Wire` body is `body`.
fn button(body: &str) -> String {
    format!(
        "public class Btn extends IScriptable {{
  private let m_label: ref<inkText>;
  public func Wire() -> Void {{ {body} }}
  protected cb func OnClick(e: ref<inkPointerEvent>) -> Bool {{ return true; }}
  public func Plain() -> Void {{}}
}}"
    )
}

#[test]
fn the_vote_example_is_accepted_and_declares_its_rpcs() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/vote/client/vote.reds");
    let src = std::fs::read_to_string(path).unwrap();
    let c = check_script("vote.reds", &src);
    assert!(c.is_ok(), "{:?}", c.diagnostics);
    assert_eq!(c.rpc_names, ["PollState"]);
    assert_eq!(c.upstream_names, ["Vote"]);
}

#[test]
fn each_input_event_on_an_own_cb_func_is_allowed() {
    for ev in INPUT_EVENTS {
        accepted(&button(&format!(
            "this.m_label.RegisterToCallback(n\"{ev}\", this, n\"OnClick\");"
        )));
    }
    // A local declared as a widget works too.
    accepted(&button(
        "let t = new inkText(); t.RegisterToCallback(n\"OnRelease\", this, n\"OnClick\");",
    ));
}

#[test]
fn a_callback_naming_a_non_cb_method_is_refused() {
    refused(
        &button("this.m_label.RegisterToCallback(n\"OnRelease\", this, n\"Plain\");"),
        Rule::InputCallback,
    );
    refused(
        &button("this.m_label.RegisterToCallback(n\"OnRelease\", this, n\"Missing\");"),
        Rule::InputCallback,
    );
}

#[test]
fn a_computed_callback_or_event_name_is_refused() {
    for args in [
        "StringToName(\"OnClick\")",
        "n\"On\" + n\"Click\"",
        "\"OnClick\"",
    ] {
        refused(
            &button(&format!(
                "this.m_label.RegisterToCallback(n\"OnRelease\", this, {args});"
            )),
            Rule::InputCallback,
        );
    }
    refused(
        &button("this.m_label.RegisterToCallback(n\"OnEnter\", this, n\"OnClick\");"),
        Rule::InputCallback,
    );
    refused(
        &button("this.m_label.RegisterToCallback(n\"OnRelease\", this);"),
        Rule::InputCallback,
    );
}

#[test]
fn a_callback_on_a_game_object_or_another_target_is_refused() {
    // Receiver not statically an ink widget (a game object, an untyped value).
    refused(
        &button(
            "GetPlayer(GetGameInstance()).RegisterToCallback(n\"OnRelease\", this, n\"OnClick\");",
        ),
        Rule::InputCallback,
    );
    refused(
        "public class Btn extends IScriptable {
  private let m_obj: ref<IScriptable>;
  public func Wire() -> Void { this.m_obj.RegisterToCallback(n\"OnRelease\", this, n\"OnClick\"); }
  protected cb func OnClick(e: ref<inkPointerEvent>) -> Bool { return true; }
}",
        Rule::InputCallback,
    );
    // Target other than `this`, or outside a class.
    refused(
        &button("this.m_label.RegisterToCallback(n\"OnRelease\", new Btn(), n\"OnClick\");"),
        Rule::InputCallback,
    );
    refused(
        "func Free(t: ref<inkText>) -> Void { t.RegisterToCallback(n\"OnRelease\", this, n\"OnClick\"); }",
        Rule::InputCallback,
    );
}

#[test]
fn each_text_and_layout_setter_is_allowed_with_its_signature() {
    let calls = [
        "t.SetFitToContent(true);",
        "t.SetInteractive(true);",
        "t.SetVisible(false);",
        "t.SetSizeRule(inkESizeRule.Stretch);",
        "t.SetSizeCoefficient(1.5);",
        "t.SetWidth(200.0);",
        "t.SetHeight(40.0);",
        "t.SetHAlign(inkEHorizontalAlign.Center);",
        "t.SetVAlign(inkEVerticalAlign.Top);",
        "t.SetAffectsLayoutWhenHidden(false);",
        "p.SetChildMargin(new inkMargin(0.0, 4.0, 0.0, 4.0));",
        "p.SetChildOrder(inkEChildOrder.Backward);",
        "t.SetFontStyle(n\"Medium\");",
        "t.SetLetterCase(textLetterCase.UpperCase);",
        "t.SetHorizontalAlignment(textHorizontalAlignment.Center);",
        "t.SetVerticalAlignment(textVerticalAlignment.Center);",
        "t.SetContentHAlign(inkEHorizontalAlign.Left);",
        "t.SetContentVAlign(inkEVerticalAlign.Center);",
        "t.SetWrapping(true);",
        "t.SetWrapping(true, 600.0);",
        "t.SetWrapping(true, 600.0, textWrappingPolicy.PerCharacter);",
        "t.SetOverflowPolicy(textOverflowPolicy.DotsEnd);",
        "let f = new inkFlex(); f.SetPadding(new inkMargin(1.0, 1.0, 1.0, 1.0));",
    ];
    for call in calls {
        accepted(&format!(
            "func F() -> Void {{ let t = new inkText(); let p = new inkVerticalPanel(); {call} }}"
        ));
    }
    // Every signature entry is a method the allowlist has (the input
    // callback has its own rule).
    for (m, _) in METHOD_SIGNATURES {
        if *m == shard_reds::policy::INPUT_CALLBACK_FN {
            continue;
        }
        assert!(
            shard_reds::policy::ALLOWED_METHODS.contains(m),
            "{m} has a signature but is not allowlisted"
        );
    }
}

#[test]
fn pointer_event_accessors_are_read_only_and_typed() {
    accepted(&button(""));
    accepted(
        "public class B extends IScriptable {
  protected cb func OnClick(e: ref<inkPointerEvent>) -> Bool {
    let n = e.GetActionName();
    let w = e.GetTarget();
    let c = e.GetCurrentTarget();
    let p = e.GetScreenSpacePosition();
    let q = e.GetWindowSpacePosition();
    return e.IsAction(n\"click\") && !e.IsHandled();
  }
}",
    );
    // Not a read-only accessor: refused as any unlisted method.
    refused(
        "public class B extends IScriptable {
  protected cb func OnClick(e: ref<inkPointerEvent>) -> Bool { e.Handle(); return true; }
}",
        Rule::ForbiddenMethod,
    );
}

#[test]
fn setters_with_wrong_arguments_are_refused() {
    for call in [
        "t.SetFitToContent();",
        "t.SetFitToContent(true, false);",
        "t.SetFitToContent(\"yes\");",
        "t.SetWidth(\"wide\");",
        "t.SetFontStyle(12);",
        "t.SetWrapping();",
        "t.SetWrapping(true, 1.0, textWrappingPolicy.PerCharacter, 4);",
        "e.IsAction(\"click\", 1);",
    ] {
        refused(
            &format!("func F(e: ref<inkPointerEvent>) -> Void {{ let t = new inkText(); {call} }}"),
            Rule::BadArguments,
        );
    }
}

#[test]
fn entry_points_are_top_level_init_functions_without_arguments() {
    let c = check_script(
        "e.reds",
        "public func VoteInit() -> Void { }\nfunc OtherInit() { }\nfunc Helper() -> Void { }\n\
         class K extends IScriptable { public func KInit() -> Void {} }",
    );
    assert!(c.is_ok(), "{:?}", c.diagnostics);
    assert_eq!(c.entry_points, ["VoteInit", "OtherInit"]);
    refused("func BadInit(x: Int32) -> Void { }", Rule::EntryPoint);
    refused("func BadInit() -> Int32 { return 1; }", Rule::EntryPoint);
}
