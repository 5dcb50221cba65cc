module MyMod.Hud
import Codeware.UI.*
import MyMod.Util.{Colors, Layout}

/* Block comments /* nest */ in REDscript. */

public class HudStatsSystem extends ScriptableSystem {
  private let m_player: wref<PlayerPuppet>;
  private persistent let m_kills: Int32;
  private let m_labels: array<ref<inkText>>;
  private let m_lookup: array<array<ref<inkWidget>>>;

  private func OnAttach() -> Void {
    this.m_kills = 0;
    let delay: Float = 1.5f;
    let big = 5u;
    let long = 5l;
    let hex = 0xFF;
    let exp = 1.0e3;
    let d = 2.5d;
    LogChannel(n"DEBUG", s"Attached with \(this.m_kills) kills");
  }

  public final func OnKill(victim: ref<NPCPuppet>, opt bonus: Int32) -> Void {
    this.m_kills += 1 + bonus * 2 - (bonus % 3);
    if this.m_kills > 10 && !IsDefined(victim) || bonus != 0 {
      this.Announce("Streak! " + IntToString(this.m_kills));
    } else if (this.m_kills == 5) {
      this.Announce("Halfway");
    } else {
      return;
    }
  }

  public static func Get(game: GameInstance) -> ref<HudStatsSystem> {
    return GameInstance.GetScriptableSystemsContainer(game).Get(n"MyMod.Hud.HudStatsSystem") as HudStatsSystem;
  }

  protected func Announce(text: String) -> Void {
    let label = new inkText();
    label.SetText(text);
    ArrayPush(this.m_labels, label);
  }
}
