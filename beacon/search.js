/*
 * Portal Insights beacon, search page part: the search with its result count, and clicks on results.
 *
 * beacon.js loads this (as beacon-search.js, next to itself) only on the search page, when the
 * page has a query; the inline install pastes it after the beacon on the search page. It uses
 * what beacon.js exposes on window.PortalInsights: `search` (the query), `config`, `track`.
 *
 * Power Pages renders search results after the page loads, so the count is read when the results
 * container fills; after 5 seconds without one, the search is sent without a count.
 */
((doc, beacon) => {
  const query = beacon?.search;
  if (!query) return;
  const cfg = { results: '.search-results', result: 'a', ...beacon.config };
  const resultLinks = cfg.results + ' ' + cfg.result;
  let done;
  const finish = (results) => {
    if (!done) {
      done = 1;
      observer.disconnect();
      beacon.track('search', { query, results });
    }
  };
  const count = () => {
    const box = doc.querySelector(cfg.results);
    if (box?.children.length) finish(box.querySelectorAll(cfg.result).length);
  };
  const observer = new MutationObserver(count);
  observer.observe(doc.documentElement, { childList: true, subtree: true });
  setTimeout(finish, 5000);
  count();
  addEventListener('click', (e) => {
    const link = e.target.closest(resultLinks);
    if (link) {
      beacon.track('search_click', {
        query, position: [...doc.querySelectorAll(resultLinks)].indexOf(link) + 1, target: link.href
      });
    }
  }, true);
})(document, window.PortalInsights);
