/* Mail Settings: each group of options folds (Trac's folding.js); groups
   with an error stay open, and the groups a user opened stay open across
   the page reload that follows Apply. */
jQuery(function($) {
  var key = "tracnotify-settings-open";
  var groups = $("#tracnotify-settings fieldset.tracnotify-group");
  var opened = [];
  try { opened = JSON.parse(sessionStorage.getItem(key) || "[]"); }
  catch (e) { opened = []; }
  groups.children("legend.foldable").enableFolding(false, false);
  groups.each(function() {
    var group = $(this);
    if (!group.hasClass("tracnotify-open") &&
        $.inArray(this.id, opened) < 0)
      group.addClass("collapsed");
  });
  if (!groups.not(".collapsed").length)
    groups.first().removeClass("collapsed");
  groups.children("legend.foldable").children("a").click(function() {
    setTimeout(function() {
      var ids = groups.not(".collapsed").map(function() {
        return this.id; }).get();
      try { sessionStorage.setItem(key, JSON.stringify(ids)); }
      catch (e) { /* storage refused: nothing kept */ }
    }, 0);
  });
});
