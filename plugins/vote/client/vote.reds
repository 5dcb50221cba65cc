// vote: a poll panel with one button per option.
// Downstream RPC "PollState": {"question": "...", "options": ["A", "B"], "counts": [2, 0]}.
// A click sends the upstream RPC "Vote": {"option": index}.

public class VoteButton extends IScriptable {
  private let m_label: ref<inkText>;
  private let m_index: Int32;

  public func Build(parent: ref<inkVerticalPanel>, index: Int32) -> Void {
    this.m_index = index;
    this.m_label = new inkText();
    this.m_label.SetFontSize(30);
    this.m_label.SetFitToContent(true);
    this.m_label.SetInteractive(true);
    this.m_label.SetLetterCase(textLetterCase.UpperCase);
    this.m_label.SetHorizontalAlignment(textHorizontalAlignment.Left);
    this.m_label.SetTintColor(new HDRColor(0.37, 0.96, 1.0, 1.0));
    this.m_label.SetOpacity(0.8);
    this.m_label.RegisterToCallback(n"OnRelease", this, n"OnClick");
    this.m_label.RegisterToCallback(n"OnHoverOver", this, n"OnHoverOver");
    this.m_label.RegisterToCallback(n"OnHoverOut", this, n"OnHoverOut");
    this.m_label.Reparent(parent);
  }

  public func Show(option: String, count: Int32) -> Void {
    this.m_label.SetText(option + "  (" + IntToString(count) + ")");
    this.m_label.SetVisible(true);
  }

  public func Hide() -> Void {
    this.m_label.SetVisible(false);
  }

  protected cb func OnClick(e: ref<inkPointerEvent>) -> Bool {
    if e.IsAction(n"click") {
      SendServerRpc(n"Vote", ShardJsonSetNumber("", "option", Cast<Float>(this.m_index)));
    }
    return true;
  }

  protected cb func OnHoverOver(e: ref<inkPointerEvent>) -> Bool {
    this.m_label.SetOpacity(1.0);
    return true;
  }

  protected cb func OnHoverOut(e: ref<inkPointerEvent>) -> Bool {
    this.m_label.SetOpacity(0.8);
    return true;
  }
}

public class PollStateHandler extends ShardRpcHandler {
  private let m_root: ref<inkVerticalPanel>;
  private let m_question: ref<inkText>;
  private let m_buttons: array<ref<VoteButton>>;

  private func Build(hud: wref<inkCanvas>) -> Void {
    this.m_root = new inkVerticalPanel();
    this.m_root.SetName(n"VotePanel");
    this.m_root.SetAnchor(inkEAnchor.CenterLeft);
    this.m_root.SetMargin(new inkMargin(60.0, 0.0, 0.0, 0.0));
    this.m_root.SetChildMargin(new inkMargin(0.0, 4.0, 0.0, 4.0));
    this.m_root.Reparent(hud);
    this.m_question = new inkText();
    this.m_question.SetFontSize(36);
    this.m_question.SetWrapping(true, 600.0);
    this.m_question.Reparent(this.m_root);
  }

  public func OnRpc(json: String) -> Void {
    if !IsDefined(this.m_root) {
      let hud = ShardHudRoot();
      if !IsDefined(hud) {
        return;
      }
      this.Build(hud);
    }
    this.m_question.SetText(ShardJsonGetString(json, "/question"));
    let n = ShardJsonGetSize(json, "/options");
    let i = 0;
    while i < n {
      if i >= ArraySize(this.m_buttons) {
        let made = new VoteButton();
        made.Build(this.m_root, i);
        ArrayPush(this.m_buttons, made);
      }
      let b: ref<VoteButton> = this.m_buttons[i];
      let at = "/" + IntToString(i);
      b.Show(ShardJsonGetString(json, "/options" + at), Cast<Int32>(ShardJsonGetNumber(json, "/counts" + at)));
      i += 1;
    }
    while i < ArraySize(this.m_buttons) {
      let hidden: ref<VoteButton> = this.m_buttons[i];
      hidden.Hide();
      i += 1;
    }
    this.m_root.SetVisible(true);
  }
}

// Entry point: registers the PollState handler.
public func VoteInit() -> Void {
  RegisterRpc(n"PollState", new PollStateHandler());
}
