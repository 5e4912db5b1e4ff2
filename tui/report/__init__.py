"""The post-rollout review (`interlock report`): a run's journal folded into a `Report`
(`model`), laid out as Markdown (`markdown`) or one self-contained HTML file (`html`)."""
