/*
 * Portal Insights beacon, search page part: the search with its result count, and clicks on results.
 *
 * beacon.js loads this (as beacon-search.js, next to itself) only on the search page, when the
 * page has a query; the inline install pastes it after the beacon on the search page. It uses
 * what beacon.js exposes on window.PortalInsights: `search` (the query), `config`, `track`.
 *
 * Power Pages renders search results after the page loads, so the count is read when the results
 * container fills: the total where the page shows one (the last number in the text of the `total`
 * selector's element, as in "Results 1 – 10 of 57"), else the result links on the page. A search is never lost: after 5 seconds without results, or when the
 * page is hidden or left first, it is sent without a count.
 */
((doc, beacon) => {
  const query = beacon?.search;
  if (!query) return;
  const cfg = { results: '.search-results', result: 'a', total: '[data-search-total]', ...beacon.config };
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
    const total = doc.querySelector(cfg.total);
    const shown = total?.textContent.match(/\d[\d.,\s]*/g)?.pop();
    if (box?.children.length) finish(shown ? +shown.replace(/\D/g, '') : box.querySelectorAll(cfg.result).length);
  };
  const observer = new MutationObserver(count);
  observer.observe(doc.documentElement, { childList: true, subtree: true });
  setTimeout(finish, 5000);
  count();
  // Capture: these run before beacon.js's own listeners, which send the outbox as the page goes.
  // (A page being left is hidden by the time pagehide fires.)
  const leave = () => doc.hidden && finish();
  addEventListener('visibilitychange', leave, true);
  addEventListener('pagehide', leave, true);
  addEventListener('click', (e) => {
    const link = e.target.closest(resultLinks);
    if (link) {
      beacon.track('search_click', {
        query, position: [...doc.querySelectorAll(resultLinks)].indexOf(link) + 1, target: link.href
      });
    }
  }, true);
})(document, window.PortalInsights);
