// Mobile command centre: status panel pushed to every client.
// The server sends RPC "CcStatus" with {"title": "...", "alert": 0.0, "units": 3}.

enum CcAlertLevel {
  Calm = 0,
  Raised = 1,
  Critical = 2
}

public class CcStatusPanel extends IScriptable {
  private let m_root: ref<inkVerticalPanel>;
  private let m_title: ref<inkText>;
  private let m_units: ref<inkText>;
  private let m_rows: array<ref<inkText>>;

  public func Build(parent: wref<inkCanvas>) -> Void {
    this.m_root = new inkVerticalPanel();
    this.m_root.SetName(n"CcStatusRoot");
    this.m_root.SetAnchor(inkEAnchor.TopRight);
    this.m_root.SetMargin(new inkMargin(0.0, 80.0, 60.0, 0.0));
    this.m_root.Reparent(parent);

    this.m_title = this.MakeLine(36);
    this.m_units = this.MakeLine(28);
  }

  private func MakeLine(size: Int32) -> ref<inkText> {
    let line = new inkText();
    line.SetFontSize(size);
    line.SetTintColor(new HDRColor(0.37, 0.96, 1.0, 1.0));
    line.Reparent(this.m_root);
    this.m_rows.PushBack(line);
    return line;
  }

  public func IsBuilt() -> Bool {
    return IsDefined(this.m_root);
  }

  public func Show(title: String, units: Int32, level: CcAlertLevel) -> Void {
    this.m_title.SetText(title);
    this.m_units.SetText("Units deployed: " + IntToString(units));
    let color: HDRColor;
    switch level {
      case CcAlertLevel.Critical:
        color = new HDRColor(1.0, 0.2, 0.2, 1.0);
        break;
      case CcAlertLevel.Raised:
        color = new HDRColor(1.0, 0.8, 0.2, 1.0);
        break;
      default:
        color = new HDRColor(0.37, 0.96, 1.0, 1.0);
    }
    for row in this.m_rows {
      row.SetTintColor(color);
    }
    this.m_root.SetVisible(true);
    this.m_root.SetOpacity(units > 0 ? 1.0 : 0.6);
  }
}

public class CcStatusHandler extends ShardRpcHandler {
  private let m_panel: ref<CcStatusPanel>;

  public func OnRpc(json: String) -> Void {
    if !IsDefined(this.m_panel) {
      this.m_panel = new CcStatusPanel();
    }
    if !this.m_panel.IsBuilt() {
      let hud = ShardHudRoot();
      if !IsDefined(hud) {
        return;
      }
      this.m_panel.Build(hud);
    }
    let alert = ShardJsonGetNumber(json, "/alert");
    let level = CcAlertLevel.Calm;
    if alert >= 2.0 {
      level = CcAlertLevel.Critical;
    } else if alert >= 1.0 {
      level = CcAlertLevel.Raised;
    }
    this.m_panel.Show(ShardJsonGetString(json, "/title"), Cast<Int32>(ShardJsonGetNumber(json, "/units")), level);
  }
}

// Registration entry point, run once when the plugin's scripts are installed.
public func CcStatusInit() -> Void {
  RegisterRpc(n"CcStatus", new CcStatusHandler());
}
