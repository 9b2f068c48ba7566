"""Issue pairs for judging duplicate detection: real-sounding reports from one web shop / SaaS.

Every pair is `{"a": issue, "b": issue, "duplicate": bool, "topic": str}` with
`issue = {"title": ..., "body": ...}`. Four groups:

- `SYMPTOM_AND_CAUSE` (duplicates): a customer's or support's symptom next to an engineer's
  diagnosis, or an error message next to what the user saw;
- `SAME_SIDE` (duplicates): two reports from the same side in different words: two customers,
  a terse and a detailed report, support and a user;
- `RELATED` and `RELATED_SAME_SIDE` (not duplicates): the same component with a different bug,
  the same symptom with a different cause, a feature request next to a bug in the same area.

In the related groups the `a` side restates the bug of a duplicate pair nearby (that is what
makes the pair a hard negative: the same area as a known bug, and another bug), so only the `b`
sides are independent issues when building a pool of distinct issues.

`PAIRS` is all of them. Used by `bench/duplicates.py` (threshold, recall@3) and
`tests/search/test_embeddings.py`.
"""

from __future__ import annotations

from typing import TypedDict


class Issue(TypedDict):
    title: str
    body: str


class Pair(TypedDict):
    a: Issue
    b: Issue
    duplicate: bool
    topic: str


def _issue(title: str, body: str) -> Issue:
    return {"title": title, "body": body}


def _duplicate(topic: str, a: tuple[str, str], b: tuple[str, str]) -> Pair:
    return {"a": _issue(*a), "b": _issue(*b), "duplicate": True, "topic": topic}


def _related(topic: str, a: tuple[str, str], b: tuple[str, str]) -> Pair:
    return {"a": _issue(*a), "b": _issue(*b), "duplicate": False, "topic": topic}


# Duplicates where one report gives the symptom and the other the cause, or the error and what
# the user saw: the hardest kind for an embedding model, since they often share few words.
SYMPTOM_AND_CAUSE: list[Pair] = [
    _duplicate(
        "checkout",
        (
            "Checkout button unresponsive on Safari",
            "On Safari 17.2 (macOS Sonoma) clicking 'Place order' does nothing: no spinner, "
            "no error message. Same cart works in Chrome and Firefox. Console shows\n"
            "`TypeError: undefined is not an object (evaluating "
            "'window.PaymentRequest.prototype')`",
        ),
        (
            "Can't finish my purchase on my Mac",
            "I have tried three times to buy the winter jacket. I fill in everything, press "
            "the big blue button at the end and nothing happens at all. I'm on my MacBook "
            "with the browser it came with. My husband ordered fine from his Windows laptop.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Password reset email never arrives",
            "Requested the reset link four times for my account, nothing in the inbox or in "
            "spam. Other emails from you (order confirmations) still reach me fine.",
        ),
        (
            "Forgot-password flow sends no mail since Mailer v3",
            "POST /auth/password/forgot answers 200 but no job is enqueued for the "
            "`password_reset` template. Started after the Mailer v3 migration on Tuesday. "
            "Transactional order mails are unaffected, it is only this template.",
        ),
    ),
    _duplicate(
        "search",
        (
            "Search finds nothing for plurals",
            "Searching 'sneakers' shows 0 results but 'sneaker' shows 48 products. Same with "
            "'dresses' vs 'dress'.",
        ),
        (
            "No stemming in the product search analyzer",
            "The product_title field uses the `standard` analyzer without a stemmer, so query "
            "terms don't match inflected forms: boots/boot, jeans/jean, dresses/dress. We "
            "should add the english stemmer (or light_english) and reindex.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Every push notification arrives twice",
            "Since yesterday's update my phone buzzes twice for each order update, both "
            "notifications identical. iPhone 13, iOS 17.",
        ),
        (
            "Duplicate APNs sends after device token refresh",
            "On launch the app re-registers its device token, and the backend inserts a new "
            "row in device_tokens without removing the previous one for the same device, so "
            "fan-out sends to both. Affects iOS 4.12.0 onward.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Charged twice for the annual plan",
            "My card statement shows two charges of $228 on the same day for the Pro annual "
            "subscription. I only clicked upgrade once. Please refund one.",
        ),
        (
            "Double-clicking Upgrade creates two subscriptions",
            "The Upgrade button isn't disabled after the first click and the create-"
            "subscription call to Stripe has no idempotency key. Two quick clicks produce two "
            "subscriptions and two paid invoices. Disable the button and send an idempotency "
            "key derived from the checkout session.",
        ),
    ),
    _duplicate(
        "api",
        (
            "X-RateLimit-Remaining is always 0",
            "Every API response carries `X-RateLimit-Remaining: 0`, even the first request of "
            "the hour, yet the requests succeed. Our client library honours the header and "
            "backs off for an hour.",
        ),
        (
            "Your API tells us we're out of requests when we aren't",
            "Our integration keeps going to sleep for an hour because the API says we have no "
            "calls left, but we only made three. The header that is supposed to show how many "
            "requests remain looks broken. Started around March 3.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Android app closes when I open my orders",
            "Profile > Orders and the app shuts immediately. Pixel 7, Android 14, app 5.3.1. "
            "Reinstalling didn't help.",
        ),
        (
            "NPE in OrderHistoryAdapter.onBindViewHolder",
            "Crashlytics: 1.2k crashes in 24 h on 5.3.x.\n"
            "```\njava.lang.NullPointerException: Attempt to invoke virtual method "
            "'java.lang.String com.shop.model.Shipment.getTrackingNumber()' on a null object "
            "reference\n  at OrderHistoryAdapter.onBindViewHolder(OrderHistoryAdapter.kt:88)\n"
            "```\nOrders that have not shipped yet have no shipment, and the order history "
            "row reads the tracking number unconditionally.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Customer export garbles accented names",
            "Opened the exported customer list in Excel: 'JosÃ©' instead of 'José', "
            "'MÃ¼ller' instead of 'Müller'. Our whole French and German customer base looks "
            "like this.",
        ),
        (
            "Write a UTF-8 BOM at the start of CSV exports",
            "Excel on Windows assumes the ANSI code page for CSV files that have no byte order "
            "mark, so any non-ASCII character in an export is mis-decoded. Prefixing the file "
            "with U+FEFF makes Excel read it as UTF-8.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Dashboard revenue doesn't match the orders report",
            "Revenue for last week on the dashboard says $12,430, but summing the orders in "
            "the Orders report for the same week gives $14,902. Which one is right?",
        ),
        (
            "Revenue widget buckets days in UTC, not the store's time zone",
            "The dashboard widget groups orders by UTC date while the Orders report uses the "
            "store time zone (America/Los_Angeles). Evening orders land on the next day in the "
            "widget, so weekly and daily totals never agree with the report.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Product pages take ~8 seconds to load",
            "Since Monday product pages are extremely slow, the spinner stays forever. "
            "Category pages and the homepage are fine.",
        ),
        (
            "N+1 queries in ProductController#show after reviews widget",
            "APM shows 300+ SELECTs per request on the product detail endpoint, one per review "
            "to load its author. Introduced with the reviews widget release (PR #2231). p95 "
            "went from 400 ms to 7.9 s. Needs a preload/join on review authors.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Discount code accepted but total doesn't change",
            "Entered SPRING20, got 'Code applied!' in green, but I'm still being charged full "
            "price on the summary.",
        ),
        (
            "Order summary not recalculated after applying a promotion",
            "POST /cart/promotions succeeds and the banner shows, but the cart store is not "
            "re-fetched, so the discount line stays at $0.00 and the total is stale. A page "
            "refresh shows the correct discounted total.",
        ),
    ),
    _duplicate(
        "shipping",
        (
            "Shipping is $0 for customers in Alaska and Hawaii",
            "We noticed a bunch of orders to Anchorage and Honolulu with free standard "
            "shipping. We definitely don't offer that, carrier charges us a fortune.",
        ),
        (
            "Non-contiguous US states fall into the free-shipping zone",
            "The zone table only has 'US', and the carrier rates for zone "
            "'US-NONCONTIGUOUS' are never matched, so AK/HI/PR get the domestic free-over-$50 "
            "rule. Zone matching should check the state before the country.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "My 2FA codes are always rejected",
            "The codes from my authenticator app never work and I'm locked out of my account. "
            "Tried Google Authenticator and Authy, the time on my phone is correct.",
        ),
        (
            "TOTP validation fails on auth-3 (clock drift)",
            "auth-3 has NTP disabled and its clock is 95 s ahead. The TOTP window is ±30 s, "
            "so any login routed to that node fails the second factor; about a third of 2FA "
            "logins fail. Re-enable chrony and alert on clock skew.",
        ),
    ),
    _duplicate(
        "i18n",
        (
            "Checkout page still in English when German is selected",
            "With the language set to Deutsch the checkout still says 'Shipping address', "
            "'Continue to payment' and 'Order summary'. The rest of the shop is translated.",
        ),
        (
            "New checkout strings were never extracted for translation",
            "The React checkout uses hard-coded English labels instead of t() calls, so none of "
            "its strings are in the locale catalogs. Every non-English locale (de, fr, es, it) "
            "shows English on the checkout steps.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "iOS app logs me out every time I open it",
            "Since updating to 4.12 I have to sign in again every single time I open the app. "
            "Very annoying.",
        ),
        (
            "Refresh token not found in Keychain on cold start (4.12)",
            "After the app-group change in 4.12 we write the refresh token with the new access "
            "group but read it with the old one, so on cold start there is no token and the "
            "user is sent to the login screen.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Newsletter unsubscribe link returns 404",
            "The 'Unsubscribe' link at the bottom of the weekly newsletter goes to "
            "/email/unsubscribe?t=... which is a 404 since the site redesign.",
        ),
        (
            "I can't stop your marketing emails",
            "I clicked unsubscribe at the bottom of your email and got a 'page not found' "
            "page. Did it work? I keep receiving them. Please take me off the list.",
        ),
    ),
    _duplicate(
        "api",
        (
            "Cursor pagination on /v2/orders skips orders",
            "Paging with limit=100 I get 9,870 orders in total while the dashboard says "
            "10,000. Some orders never appear on any page, always the same ones.",
        ),
        (
            "Orders cursor uses created_at alone, which is not unique",
            "Bulk imports create many orders with the same created_at. When such a group "
            "straddles a page boundary, the next page's `created_at > cursor` drops the rest. "
            "Use (created_at, id) as the cursor.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Exporting all 2023 orders ends in a 504",
            "Clicking 'Export all' for 2023 shows a Gateway Timeout page after about a minute. "
            "Exporting a single month works.",
        ),
        (
            "Order export generated inside the request, times out for big shops",
            "/admin/exports/orders builds the whole CSV synchronously; merchants with more "
            "than ~50k orders hit nginx's 60 s proxy timeout. Move export generation to a "
            "background job and email a download link.",
        ),
    ),
    _duplicate(
        "cart",
        (
            "Cart is emptied when I sign in",
            "I add things as a guest, then log in to check out and my cart is empty. Happened "
            "twice today.",
        ),
        (
            "Anonymous cart not merged into the user's cart on login",
            "On login we replace the session cart with the persisted user cart instead of "
            "merging the two. Items added before signing in are lost.",
        ),
    ),
    _duplicate(
        "search",
        (
            "Search suggestions show results for what I typed before",
            "When I type quickly into the search box the dropdown shows suggestions for the "
            "word I had three letters ago, then it flickers and sometimes stays wrong.",
        ),
        (
            "Out-of-order responses in search-as-you-type",
            "Responses for earlier keystrokes can arrive after later ones and overwrite them. "
            "Cancel in-flight requests with an AbortController, or drop responses whose "
            "sequence number is older than the last rendered one.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Our VAT number is missing from invoices",
            "We entered our company VAT ID in the billing settings, but it doesn't appear on "
            "any of the invoices. Our accountant can't book them without it.",
        ),
        (
            "Invoice template reads a field that no longer exists (tax id)",
            "The invoice template uses `account.vat_id`, which the billing migration renamed "
            "to `billing_profile.tax_id`. Every invoice since then has an empty line where the "
            "customer's tax id should be.",
        ),
    ),
    _duplicate(
        "webhooks",
        (
            "Webhooks lost while our endpoint was down",
            "We had 10 minutes of downtime and never received the order.created webhooks "
            "from that window. Your docs say failed deliveries are retried for 72 hours.",
        ),
        (
            "Webhook worker marks 5xx deliveries as permanently failed",
            "`deliver_webhook` treats any non-2xx answer as final: it sets the delivery to "
            "`failed` without scheduling a retry. Regression from the worker refactor in "
            "2.14; only 4xx other than 408/429 should be final.",
        ),
    ),
    _duplicate(
        "accessibility",
        (
            "VoiceOver just says 'image' for every product photo",
            "I'm blind and use VoiceOver. On product pages every picture is read as 'image' "
            "with no description, so I can't tell the colours apart.",
        ),
        (
            "ProductGallery renders <img> without alt",
            "The API returns `image.alt_text` for each product image but ProductGallery never "
            "passes it down, so all gallery images have no alt attribute. Fails WCAG 1.1.1.",
        ),
    ),
    _duplicate(
        "reviews",
        (
            "My review of the Vitamix 5200 disappeared",
            "I wrote a review for the Vitamix 5200 blender two days ago. It showed up, and now "
            "it's gone. It wasn't rude or anything, just my experience with it.",
        ),
        (
            "Spam filter hides reviews that mention model numbers",
            "The link detector in review moderation treats tokens like 'A3500' or '5200' "
            "next to a brand name as URLs and auto-hides the review. Lots of legitimate "
            "reviews of appliances were unpublished by the nightly moderation job.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "App takes forever to open",
            "The Android app sits on the splash screen for 10+ seconds on my Samsung A12. It "
            "used to open in 2-3 seconds.",
        ),
        (
            "Cold start blocked by remote config fetch on the main thread",
            "Since 5.2.0 Application.onCreate waits synchronously for the remote config HTTP "
            "call. On slow devices or networks cold start is 8-12 s. Load cached defaults and "
            "fetch in the background.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "SSO login fails with 'Invalid response signature'",
            "Our team signs in with Okta. Since this morning 'Sign in with SSO' ends on an "
            "error page that says 'Invalid response signature'. Nobody can get in.",
        ),
        (
            "SAML breaks after the IdP rotates its signing certificate",
            "Okta rotated our SAML signing certificate yesterday. Your side still has the old "
            "certificate stored and the admin panel has no way to upload the new one or read "
            "it from the IdP metadata URL, so the whole org is locked out.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "No text message when my order ships",
            "I opted in to SMS updates at checkout but never got any text about shipping. "
            "Email updates arrive.",
        ),
        (
            "Twilio 21606 on all outbound SMS since env change",
            "Shipment notifications over SMS fail with Twilio error 21606 ('From' phone "
            "number is not a valid, SMS-capable number) since the messaging service SID "
            "variable was changed on 3/14. No SMS order update has gone out since.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Can't enter my apartment number",
            "The second address line won't take '#', so I can't type 'Apt #4B'. It just says "
            "invalid address.",
        ),
        (
            "address2 validation rejects common characters",
            "The validation regex for address line 2 is `^[A-Za-z0-9 .,-]*$`. It rejects '#', "
            "'/', and accented letters ('Étage 3', 'Bâtiment B').",
        ),
    ),
    _duplicate(
        "search",
        (
            "'Under $50' filter hides sale items",
            "Filtering by 'Under $50' hides things that are on sale for $39 (originally $60). "
            "Customers complained they can't find the sale items.",
        ),
        (
            "Price facet built from list_price instead of the effective price",
            "The price range filter and facet counts use `list_price`, so discounted products "
            "are bucketed and filtered by their original price. The index should carry the "
            "current selling price.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Downgraded and my bill went up?",
            "I switched from Business to Team in the middle of the month and the next invoice "
            "is higher than a normal month. Shouldn't I get credit for the part I didn't use?",
        ),
        (
            "No proration credit on downgrade",
            "Plan downgrades are applied with proration_behavior=none. No credit for the unused "
            "time on the higher plan is created, and the customer pays the new plan in full on "
            "top of what they already paid.",
        ),
    ),
    _duplicate(
        "api",
        (
            "New API keys get 401 Unauthorized",
            "Created a new API key in the dashboard, every request with it gets 401. Our old "
            "key still works. After lunch the new one suddenly worked too.",
        ),
        (
            "API gateway key cache only refreshed hourly",
            "Key creation writes to Postgres, but the gateway validates against the Redis key "
            "cache, which is only rebuilt by the hourly sync job. New keys are rejected for up "
            "to an hour after creation. Publish an invalidation on create.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Can't read product descriptions in dark mode",
            "On my iPhone with dark mode on, the description text on product pages is black on "
            "a black background. I have to select it to read it.",
        ),
        (
            "ProductDetailView uses UIColor.black for labels",
            "Description and spec labels are hard-coded to UIColor.black instead of the "
            "semantic .label colour, so they disappear under the dark appearance.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Dates in the export are the wrong way round",
            "We're in the UK. The export shows 03/04/2024, which we read as 3 April, but the "
            "order was placed on 4 March. It's messing up our accounting import.",
        ),
        (
            "CSV exports hard-code the US date pattern",
            "Exports format dates with `%m/%d/%Y` regardless of the store locale. Spreadsheets "
            "of European merchants parse them as day/month. Use ISO 8601 (YYYY-MM-DD) or the "
            "store's locale.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Warehouse staff can see our sales numbers",
            "I gave my warehouse staff the 'Fulfillment' role but they can still open "
            "Analytics and see revenue. They should only see orders to pack.",
        ),
        (
            "Analytics endpoints only check is_staff",
            "`/admin/analytics/*` checks `user.is_staff` but not the `view_analytics` "
            "permission, so every staff role can read revenue and margin data.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Search is very slow in the evening",
            "Between about 6 and 9 pm searching takes 5 to 10 seconds. The rest of the site "
            "is fine and in the morning search is instant.",
        ),
        (
            "Elasticsearch CPU saturated during evening peak",
            "Search p99 reaches 9 s from 18:00 to 21:00 every day. The 3 data nodes sit at 95% "
            "CPU; the query cache is disabled and the leading-wildcard query on `sku` is very "
            "expensive. Needs more capacity or a cheaper SKU query.",
        ),
    ),
    _duplicate(
        "inventory",
        (
            "Two people bought our last lamp",
            "Two customers bought the last unit of the same lamp within a minute of each "
            "other, and both orders went through. Now we have to cancel one and apologise.",
        ),
        (
            "Stock check and decrement are not atomic",
            "Checkout reads the stock, checks > 0, and updates it in separate statements "
            "without a lock, so concurrent checkouts both pass the check and the quantity "
            "goes negative. Use `UPDATE ... WHERE stock > 0 RETURNING` or SELECT FOR UPDATE.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Order confirmation emails arrive hours later",
            "Customers tell us the confirmation email comes 3-4 hours after they order. Some "
            "think the order failed and order again.",
        ),
        (
            "mailers queue backed up: one worker since the infra change",
            "The `mailers` Sidekiq queue has 40k jobs waiting. Since Thursday's infra change "
            "it is served by a single process with concurrency 5. Latency of transactional "
            "mail is about 3 hours.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Payments declined for European customers",
            "Customers from Germany and France keep telling us their payment is declined, even "
            "though the same card works on other sites. US customers are fine.",
        ),
        (
            "3-D Secure challenge never shown; SCA payments fail",
            "We confirm PaymentIntents with `error_on_requires_action=true`, so every EU card "
            "that requires Strong Customer Authentication fails with "
            "`authentication_required` instead of presenting the 3DS challenge.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Login says my account doesn't exist",
            "I signed up as John.Smith@Gmail.com. When I log in with john.smith@gmail.com it "
            "says no account was found. If I type it exactly as I signed up it works.",
        ),
        (
            "Case-sensitive email comparison at sign-in",
            "users.email is compared with `=` and sign-up keeps the case the user typed. Use "
            "lower(email) on both sides (and a unique index on lower(email)).",
        ),
    ),
    _duplicate(
        "webhooks",
        (
            "Webhook signature never matches",
            "Following the docs I compute HMAC-SHA256 of the request body with our secret and "
            "compare it to X-Shop-Signature. It never matches. Tried in Node and in Python.",
        ),
        (
            "Sender signs re-serialized JSON, not the bytes it sends",
            "The webhook sender computes the signature over `json.dumps(payload)` (with spaces "
            "after separators) but posts the compact serialization. Receivers that hash the "
            "raw body, as documented, can never verify.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Pictures look blurry in the iPad app",
            "On my iPad Pro the product photos look pixelated. On the website on the same iPad "
            "they are sharp.",
        ),
        (
            "App requests 375px images on every device",
            "The image service is always asked for `w=375`. On @2x/@3x screens and on iPads we "
            "upscale a small image. Request width times the screen scale, capped at 2048.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Weekly sales report attachment is empty",
            "Every Monday I get the weekly sales report by email, but the CSV only has the "
            "header row. Last month it had data.",
        ),
        (
            "Scheduled report runs before the warehouse sync finishes",
            "The weekly report job runs at 05:00 UTC on Monday; the warehouse ETL finishes "
            "around 07:00. Querying 'last week' at 05:00 finds no rows, so we mail a "
            "header-only CSV.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Bulk price change only updated 50 of 600 products",
            "I selected all products in the list, chose 'Adjust price +10%', and only 50 "
            "changed. The rest still have the old price.",
        ),
        (
            "'Select all' in the product grid only selects the loaded page",
            "The header checkbox selects the 50 rows on screen and bulk actions receive only "
            "those ids. There's no 'select all N matching this filter' like in the orders grid.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "image-resizer pods OOMKilled every few hours",
            "The image-resizer deployment restarts with OOMKilled several times a day. "
            "Memory graph climbs steadily from start until the kill.",
        ),
        (
            "Memory leak in thumbnail generation",
            "Each resize opens the source image with PIL's Image.open and never closes it. "
            "RSS grows by about 30 MB per thousand images until the container hits its 2 GiB "
            "limit. Use a context manager.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Guest checkout forces me to create an account",
            "I don't want an account. After entering my email, checkout makes me choose a "
            "password before I can continue.",
        ),
        (
            "allow_guest_checkout ignored by the v3 checkout",
            "The store setting `allow_guest_checkout` isn't read by the new checkout flow, "
            "which always routes to the registration step after the email step.",
        ),
    ),
    _duplicate(
        "search",
        (
            "Sorting by price low to high is wrong",
            "When I sort by price ascending, $100 items show before $20 items. It looks random.",
        ),
        (
            "Price is indexed as a keyword, so sorting is lexicographic",
            "The `price` field is mapped as keyword, so the sort compares strings: '100.00' < "
            "'20.00'. Map it as scaled_float and reindex.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Red badge on the bell never goes away",
            "The bell icon keeps showing 3 unread even after I've opened every notification. "
            "Logging out and in doesn't clear it.",
        ),
        (
            "Unread counter cache not invalidated on mark-as-read",
            "PATCH /notifications/read updates the rows, but the unread_count cached in Redis "
            "(TTL 24 h) is never invalidated, so the badge stays stale for a day.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Account suspended although I updated my card",
            "I got an email that my payment failed, updated my card the same day, and today "
            "my workspace is suspended anyway. Nothing was charged to the new card.",
        ),
        (
            "Dunning keeps retrying the old card after a payment method update",
            "When a customer adds a new default payment method after a failed invoice, the "
            "open invoice is not retried with it. Dunning continues against the old card and "
            "suspends the account after the third failure.",
        ),
    ),
    _duplicate(
        "api",
        (
            "POST /v2/products/bulk returns 502 for large payloads",
            "Sending 1,000 products in one call fails with 502 Bad Gateway. 200 per call "
            "works fine. Body is about 9 MB.",
        ),
        (
            "Nightly catalog sync to your API fails since we grew",
            "Our PIM pushes the whole catalog every night through the bulk products endpoint. "
            "Since we passed roughly 800 SKUs it fails with a 'bad gateway' page from your "
            "load balancer. Nothing changed on our side.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Tapping a notification just opens the home screen",
            "The push says my order has shipped, but tapping it opens the app on the home "
            "screen instead of the order. Only when the app was closed, I think.",
        ),
        (
            "Notification deep link dropped on cold start",
            'When the app is not running, `userInfo["deeplink"]` from the launch options is '
            "never handed to the router; only warm starts handle the deep link.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Kicked to the login page while writing a product description",
            "I spent about 40 minutes writing a long description in the admin, pressed save "
            "and landed on the login page. Everything I wrote was lost.",
        ),
        (
            "Admin session expires 30 minutes after login despite activity",
            "The idle timeout counts from login, not from the last request: the session "
            "cookie is never refreshed (sliding expiration is off), so active users are "
            "logged out at 30 minutes.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Packing slips cut off long product names",
            "Product names longer than a line are cut on the printed packing slip, so our "
            "pickers can't tell the variants apart (size and colour are at the end).",
        ),
        (
            "Packing slip template truncates item titles to 40 characters",
            "The PDF template does `title[:40]` inside a fixed-height cell. Variant suffixes "
            "like 'Size: XL / Color: Navy' are lost.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Nothing in the activity log about a deleted product",
            "A product disappeared from our catalogue yesterday and the activity log has no "
            "entry saying who removed it.",
        ),
        (
            "Bulk delete bypasses the audit trail",
            "Deleting from the bulk actions menu calls the repository directly instead of "
            "ProductService.delete, so no audit event is written for those deletions.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Homepage Lighthouse mobile score dropped to 28",
            "Lighthouse mobile went from 71 to 28 in the last sprint, LCP is 7.8 s on a "
            "throttled Moto G4.",
        ),
        (
            "New hero banner is a 4 MB PNG",
            "The homepage hero is served as an uncompressed 3840px PNG with no srcset, which "
            "is the LCP element and takes seconds on phones. Serve AVIF/WebP with responsive "
            "sizes and preload it.",
        ),
    ),
    _duplicate(
        "inventory",
        (
            "Stock levels don't update from our warehouse",
            "Our WMS shows 0 for TSHIRT-BLK-M since last week but the store still sells it "
            "and says 14 in stock.",
        ),
        (
            "ShipBob inventory webhooks rejected with 401 (renamed signature header)",
            "ShipBob now sends `X-ShipBob-Signature-256`; we only look at "
            "`X-ShipBob-Signature` and answer 401. No inventory update has been applied since "
            "February 2.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Sales tax too low for Denver",
            "Customers in Denver are charged 2.9% sales tax. It should be around 8.8% with "
            "city and district taxes.",
        ),
        (
            "Tax request sends only the state, so local rates are skipped",
            "We pass just the state code to the tax engine, not the full address/ZIP, so for "
            "home-rule states (CO, LA, AL) only the state rate is applied.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "App is just a white screen on the subway",
            "When I have no signal, opening the app shows a blank white page. Not even the "
            "things I looked at before.",
        ),
        (
            "Home feed never falls back to the Room cache",
            "If GET /feed fails, HomeViewModel emits the empty state and never reads the "
            "cached feed from Room. Offline users get an empty screen.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Sign in with Apple says 'Something went wrong'",
            "I tap 'Continue with Apple', Face ID works, and then the page says 'Something "
            "went wrong'. On the website, not in the app.",
        ),
        (
            "Apple identity token rejected: invalid audience",
            "After moving web sign-in to the new Services ID we still validate `aud` against "
            "the iOS bundle id, so every web Apple sign-in fails token validation.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Daily digest arrives at 3 am",
            "The daily summary email comes in the middle of the night for me, I'm in Sydney. "
            "Can it come in the morning?",
        ),
        (
            "Digest scheduler ignores the user's time zone",
            "All digests are sent at 16:00 UTC. `user.timezone` is stored but the scheduler "
            "doesn't use it, so users outside Europe get them at odd hours.",
        ),
    ),
    _duplicate(
        "search",
        (
            "Searching 'hoodie' finds no sweatshirts",
            "We sell lots of 'hooded sweatshirts'. Customers type 'hoodie' and get zero "
            "results, so they think we don't have any.",
        ),
        (
            "Support search synonyms (hoodie = hooded sweatshirt, tee = t-shirt)",
            "Shoppers use words that aren't in our product titles. A synonym list in the "
            "search analyzer would map the common ones: hoodie/hooded sweatshirt, "
            "tee/t-shirt, sneakers/trainers.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Prices in US dollars for Canadian customers",
            "I'm in Toronto and the whole store shows USD, even though you have Canadian "
            "prices. Friends in Vancouver see the same.",
        ),
        (
            "Geo-IP currency detection broken after the CDN switch",
            "We read the country from `CF-IPCountry`, but since moving to Fastly the header "
            "is `Fastly-Geo-Country`, so every visitor falls back to the default USD "
            "currency.",
        ),
    ),
    _duplicate(
        "api",
        (
            "Python SDK raises ValueError on order timestamps",
            "`shop.orders.list()` crashes with\n"
            "```\nValueError: Invalid isoformat string: '2024-03-01T10:00:00.123456789Z'\n"
            "```\nsdk 2.3.0, Python 3.11.",
        ),
        (
            "Orders service emits nanosecond timestamps",
            "Since the orders service rewrite in Go, timestamps are RFC3339Nano (9 fractional "
            "digits). Python's fromisoformat and several client libraries reject them. "
            "Format with millisecond precision as before.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Can't upload product photos taken on my iPhone",
            "When I upload pictures straight from my iPhone the admin says 'unsupported file'. "
            "Screenshots upload fine.",
        ),
        (
            "HEIC images rejected by the media uploader",
            "The uploader only accepts image/jpeg, png, webp and gif. iOS saves photos as "
            "HEIC by default. Convert HEIC to JPEG on upload.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "QuickBooks sync keeps duplicating our invoices",
            "Every time the sync runs it creates the same invoices again. We now have four "
            "copies of everything from March in QuickBooks.",
        ),
        (
            "QBO integration doesn't store the external id",
            "We push invoices to QuickBooks Online but never persist the Id QBO returns, so "
            "the next sync can't find existing invoices and creates them again.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Checkout stuck on 'Processing…' for half a minute",
            "It does go through eventually, but people think it's broken, refresh, and some "
            "end up ordering twice.",
        ),
        (
            "Fraud scoring call has no timeout",
            "Order placement calls the fraud scoring API synchronously with the HTTP "
            "client's default 30 s timeout. The vendor has been slow all week, so placing an "
            "order takes ~30 s. Use a 2 s timeout and fail open.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Back button closes the app on a product page",
            "When I open a product from search and press back, the app closes instead of "
            "going back to my search results. Android.",
        ),
        (
            "Back stack cleared when navigating from search to a product",
            "SearchFragment navigates to ProductFragment with popUpTo(root, inclusive = true), "
            "so the back stack is empty and system back finishes the activity.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Locked out after one wrong password",
            "I typed my password wrong once and now it says my account is locked for 30 "
            "minutes. That seems extreme.",
        ),
        (
            "auth.lockout.max_failed_attempts set to 1 in production",
            "Monday's security config change set `max_failed_attempts: 1` (it was 10), so a "
            "single typo locks the account for 30 minutes. Support is flooded.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Slack messages for new orders stopped",
            "Our #orders channel stopped getting the new order messages about a week ago. "
            "The Slack integration still says 'Connected'.",
        ),
        (
            "Slack bot tokens revoked after scope change; errors swallowed",
            "Slack revoked every bot token when our app's scopes changed. The integration "
            "gets `token_revoked`, logs it at debug level and carries on, and the settings "
            "page still shows 'Connected'.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Apple Pay is gone from checkout",
            "On my iPhone in Safari I don't see the Apple Pay button at checkout anymore. It "
            "was there last month.",
        ),
        (
            "Apple Pay domain association file returns 404",
            "/.well-known/apple-developer-merchantid-domain-association is 404 since the "
            "Next.js migration, so Apple disabled Apple Pay for our domain.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Tax total in the monthly report is a few cents off",
            "The tax column total in the monthly report differs by $0.03 from the sum of the "
            "invoices for the same month. Our accountant noticed.",
        ),
        (
            "Tax report rounds per line, invoices round per invoice",
            "The report rounds tax on each line item and sums the rounded values, while "
            "invoices round the invoice total. The two drift by a few cents each month.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Admin order search can't find emails with a plus sign",
            "Searching for anna+shop@example.com in the orders list finds nothing, but the "
            "order is there when I scroll.",
        ),
        (
            "Admin search query not URL-encoded; '+' becomes a space",
            "The admin search box puts the raw query into the URL, and the server decodes '+' "
            "as a space, so any term containing '+' never matches.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Site down for five minutes every night around 2 am",
            "Our uptime monitor pages us every night between 2:00 and 2:05. It comes back on "
            "its own.",
        ),
        (
            "Nightly VACUUM FULL on orders takes an exclusive lock",
            "The maintenance cron runs VACUUM FULL on the orders table at 02:00. It holds an "
            "ACCESS EXCLUSIVE lock, so checkout and every order read block for about five "
            "minutes. Plain VACUUM (or pg_repack) is enough.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "Verification link expired the moment I clicked it",
            "I clicked the link in the welcome email less than a minute after signing up and "
            "it said 'This link has expired'.",
        ),
        (
            "Email confirmation tokens are born expired (local vs UTC time)",
            "Token expiry is computed with datetime.now() (server local time, UTC-8) and "
            "compared with utcnow(), so every new token already looks eight hours old.",
        ),
    ),
    _duplicate(
        "reviews",
        (
            "Photos on my review don't show",
            "I attached two photos to my review. Only the text is visible, the photos are "
            "broken image icons.",
        ),
        (
            "Review attachments uploaded with a private ACL",
            "Since the bucket policy change, review images are written to S3 with ACL "
            "private. The CDN gets 403 for them and the <img> tags break.",
        ),
    ),
    _duplicate(
        "i18n",
        (
            "Checkout looks broken in Arabic",
            "In Arabic the price and the currency are swapped, the 'next' arrow points the "
            "wrong way and the form fields are misaligned to the left.",
        ),
        (
            "Checkout components don't support right-to-left",
            "Checkout uses physical CSS properties (margin-left, text-align: left) and the "
            'root isn\'t given dir="rtl" for ar/he, so the layout is never mirrored. Switch '
            "to logical properties.",
        ),
    ),
]

# Related non-duplicates, most of them next to a pair in SYMPTOM_AND_CAUSE: same component and a
# different bug, same symptom and a different cause, or a feature request in the same area.
RELATED: list[Pair] = [
    _related(
        "checkout",
        (
            "Place order button does nothing in Safari",
            "Safari 17 on macOS: clicking 'Place order' has no effect and the console shows a "
            "TypeError about PaymentRequest. Chrome works.",
        ),
        (
            "Place order button hidden behind the cookie banner on small phones",
            "On an iPhone SE the cookie consent bar covers the bottom of the checkout, and the "
            "'Place order' button is half under it. You can't tap it until you dismiss the "
            "banner, which many people don't notice.",
        ),
    ),
    _related(
        "auth",
        (
            "Password reset email never arrives",
            "I've asked for a password reset link several times today and nothing arrives, "
            "not even in spam.",
        ),
        (
            "Password reset links can be used more than once",
            "After resetting my password I clicked the same link in the email again and could "
            "set yet another password. Reset links should be single-use and expire once used.",
        ),
    ),
    _related(
        "search",
        (
            "No results when searching plurals",
            "'sneakers' finds nothing, 'sneaker' finds 48 products. The analyzer has no stemming.",
        ),
        (
            "Out-of-stock products ranked first in search",
            "Search for 'running shoes' and the top six results are all sold out. In-stock "
            "items should be boosted, or sold-out ones pushed to the end.",
        ),
    ),
    _related(
        "notifications",
        (
            "Push notifications delivered twice on iOS",
            "Each order update arrives as two identical pushes since 4.12; duplicate rows in "
            "device_tokens.",
        ),
        (
            "No push notifications at all on Android 14",
            "On Android 14 the app never asks for the POST_NOTIFICATIONS runtime permission, so "
            "new installs silently get no push notifications. Existing installs that upgraded "
            "are fine.",
        ),
    ),
    _related(
        "billing",
        (
            "Charged twice when upgrading to the annual plan",
            "Two $228 charges on the same day for one upgrade. Looks like a double click "
            "created two subscriptions.",
        ),
        (
            "Refund for cancelled annual plan never came",
            "I cancelled my annual plan within the 14-day window and the confirmation said I'd "
            "be refunded in 5-10 days. It's been three weeks and nothing is back on my card.",
        ),
    ),
    _related(
        "api",
        (
            "Rate limit header always says 0 remaining",
            "`X-RateLimit-Remaining: 0` on every response even though requests succeed; our "
            "client backs off for an hour.",
        ),
        (
            "Higher API rate limit for enterprise accounts",
            "We're on the Enterprise plan and sync 200k products. 5,000 requests per hour "
            "isn't enough for a full sync. Could enterprise accounts get a higher limit, or a "
            "bulk endpoint that counts as one request?",
        ),
    ),
    _related(
        "mobile",
        (
            "Android app crashes opening order history",
            "Tap Orders and the app closes. NPE in OrderHistoryAdapter on orders without a "
            "shipment. 5.3.1.",
        ),
        (
            "App crashes on launch on Android 8 devices",
            "Since 5.3.0 the app crashes immediately on start on Android 8.0/8.1:\n"
            "```\njava.lang.NoSuchMethodError: No static method ofPattern(...)\n```\n"
            "java.time is used without core library desugaring enabled.",
        ),
    ),
    _related(
        "exports",
        (
            "Customer CSV export mangles accented characters",
            "Names like José and Müller come out as JosÃ© and MÃ¼ller when the export is "
            "opened in Excel.",
        ),
        (
            "Customer export is missing the phone number column",
            "The customer CSV has name, email and address but no phone, even though we collect "
            "phone numbers at checkout. Our call centre needs it.",
        ),
    ),
    _related(
        "admin",
        (
            "Dashboard revenue doesn't match the orders report",
            "Weekly revenue on the dashboard is lower than the Orders report; the widget seems "
            "to group by UTC day.",
        ),
        (
            "Add a year-over-year comparison to the revenue chart",
            "It would help a lot to see this week's revenue next to the same week last year "
            "on the dashboard chart, as a second line or a percentage.",
        ),
    ),
    _related(
        "performance",
        (
            "Product pages take 8 s to load",
            "Product detail p95 jumped to 7.9 s after the reviews widget shipped: one query per "
            "review author.",
        ),
        (
            "Category page slow when several filters are combined",
            "Filtering a category by size, colour and brand at once takes 4-6 s. With one "
            "filter it's instant. The attribute filter builds one EXISTS subquery per selected "
            "value.",
        ),
    ),
    _related(
        "checkout",
        (
            "Discount code accepted but total unchanged",
            "SPRING20 shows 'Code applied' but the order summary still has the full price "
            "until I refresh.",
        ),
        (
            "Single-use coupon can be redeemed many times",
            "Our WELCOME10 code is limited to one use per customer, but the same customer can "
            "use it on every order if they apply it from the cart page instead of the "
            "checkout. The limit is only checked in checkout.",
        ),
    ),
    _related(
        "shipping",
        (
            "Free shipping applied to Alaska and Hawaii",
            "Orders to AK and HI get free standard shipping; the non-contiguous zone is never "
            "matched.",
        ),
        (
            "Estimated delivery date ignores public holidays",
            "Over Thanksgiving the checkout promised delivery on Thursday. Carriers don't "
            "deliver on holidays, and we got lots of 'where is my order' tickets.",
        ),
    ),
    _related(
        "auth",
        (
            "2FA codes rejected",
            "Authenticator codes fail for about a third of logins; one auth node's clock is ahead.",
        ),
        (
            "Support passkeys / WebAuthn as a second factor",
            "TOTP codes are a hassle on desktop. Please let us register a security key or a "
            "passkey (Touch ID, Windows Hello) as the second factor.",
        ),
    ),
    _related(
        "i18n",
        (
            "Checkout not translated into German",
            "With Deutsch selected the checkout shows English labels; the new checkout's "
            "strings aren't in the catalogs.",
        ),
        (
            "German product descriptions show HTML entities",
            "Product descriptions in German display '&uuml;' and '&szlig;' instead of 'ü' "
            "and 'ß'. The text is escaped twice when it comes from the translation import.",
        ),
    ),
    _related(
        "mobile",
        (
            "iOS app asks me to log in every time",
            "Since 4.12 the refresh token isn't found in the Keychain on cold start, so every "
            "launch shows the login screen.",
        ),
        (
            "Face ID option missing after reinstalling the app",
            "I reinstalled the app and now there's no 'Use Face ID' toggle in settings at all, "
            "only password login. Before the reinstall I used Face ID every day.",
        ),
    ),
    _related(
        "notifications",
        (
            "Newsletter unsubscribe link is a 404",
            "The unsubscribe link in the weekly newsletter leads to 'page not found' since the "
            "redesign.",
        ),
        (
            "Unsubscribing from marketing also stops order emails",
            "A customer unsubscribed from the newsletter and then never got her order "
            "confirmation or shipping emails. Marketing opt-out shouldn't affect "
            "transactional mail.",
        ),
    ),
    _related(
        "api",
        (
            "Cursor pagination on /v2/orders skips orders",
            "Orders with the same created_at are dropped at page boundaries.",
        ),
        (
            "Add an updated_since filter to /v2/orders",
            "To sync incrementally we have to page through every order every hour. An "
            "`updated_since` parameter would let us fetch only what changed.",
        ),
    ),
    _related(
        "exports",
        (
            "Exporting a whole year of orders times out",
            "'Export all' for 2023 gives a 504 after a minute; the CSV is built inside the "
            "request.",
        ),
        (
            "Order export ignores the date filter",
            "I filter the orders list to last week and click Export, and the file contains "
            "every order since we opened. The filter isn't passed to the export.",
        ),
    ),
    _related(
        "cart",
        (
            "Cart emptied when signing in",
            "Guest cart items vanish at login; the session cart is replaced, not merged.",
        ),
        (
            "Cart total doesn't update when changing quantity on mobile web",
            "On my phone, changing the quantity from 1 to 3 with the stepper updates the line "
            "but the cart total at the bottom stays the same until I reload.",
        ),
    ),
    _related(
        "search",
        (
            "Autocomplete shows suggestions for an earlier query",
            "Typing fast, the dropdown shows results for what I typed a moment ago; responses "
            "arrive out of order.",
        ),
        (
            "Autocomplete suggests products that were deleted",
            "The search dropdown still suggests the 'Summer Linen Shirt' which we deleted two "
            "weeks ago; clicking it gives a 404. The suggestion index isn't updated on "
            "delete.",
        ),
    ),
    _related(
        "billing",
        (
            "VAT number missing on invoices",
            "Our company VAT ID from billing settings doesn't appear on invoices since the "
            "billing migration.",
        ),
        (
            "Gaps in invoice numbering",
            "Invoice numbers jump from INV-1042 to INV-1045. Our auditor requires a "
            "consecutive sequence. It looks like failed payments consume a number.",
        ),
    ),
    _related(
        "webhooks",
        (
            "Webhooks not retried after our downtime",
            "Deliveries that got a 5xx during our outage were never retried.",
        ),
        (
            "order.updated webhook payload lacks line items",
            "The order.created payload includes line_items but order.updated doesn't, so we "
            "have to call the API for every update to know what changed.",
        ),
    ),
    _related(
        "accessibility",
        (
            "Product images have no alt text",
            "Screen readers announce gallery images as 'image'; alt_text from the API isn't "
            "rendered.",
        ),
        (
            "Keyboard focus trapped in the size picker",
            "Opening the size guide modal with the keyboard, Tab cycles inside it and Escape "
            "doesn't close it. Keyboard-only users can't get back to the page.",
        ),
    ),
    _related(
        "reviews",
        (
            "Reviews mentioning model numbers get hidden",
            "The moderation link filter treats '5200' style model numbers as URLs and hides "
            "the review.",
        ),
        (
            "Let merchants reply publicly to reviews",
            "We'd like to answer negative reviews under the review itself, like on Google or "
            "Amazon, so other shoppers see we fixed the problem.",
        ),
    ),
    _related(
        "mobile",
        (
            "App takes 10 seconds to open on Android",
            "Cold start blocks on the remote config request on the main thread since 5.2.0.",
        ),
        (
            "App download size grew to 180 MB",
            "The Android app went from 45 MB to 180 MB in 5.2.0. Users on limited data plans "
            "complain. The onboarding videos are bundled in the APK instead of streamed.",
        ),
    ),
    _related(
        "auth",
        (
            "SSO broken after Okta certificate rotation",
            "'Invalid response signature' for everyone on SSO; we can't upload the new IdP "
            "certificate.",
        ),
        (
            "First SSO login creates a second account",
            "When someone who already has a password account signs in through Okta for the "
            "first time, a new account with the same email is created instead of linking to "
            "the existing one. Their order history is on the old account.",
        ),
    ),
    _related(
        "notifications",
        (
            "Shipping SMS not sent",
            "All SMS order updates fail with Twilio 21606 since the messaging service SID was "
            "changed.",
        ),
        (
            "SMS sent to customers who opted out",
            "A customer replied STOP weeks ago and still receives our shipping texts. We "
            "don't process Twilio's opt-out callbacks, which may also be a TCPA problem.",
        ),
    ),
    _related(
        "checkout",
        (
            "Address line 2 rejects '#'",
            "Can't type 'Apt #4B' at checkout; the address2 regex only allows letters, digits "
            "and a few punctuation marks.",
        ),
        (
            "Address autocomplete fills the wrong postcode in the UK",
            "Picking an address from the autocomplete dropdown for a UK address puts the "
            "postcode of the neighbouring street in the postcode field, and delivery fails.",
        ),
    ),
    _related(
        "search",
        (
            "Price filter ignores sale prices",
            "'Under $50' hides items on sale for $39; the facet uses list_price.",
        ),
        (
            "Brand facet counts are wrong",
            "The brand filter says 'Nike (34)', but selecting it shows 12 products. The counts "
            "include variants and out-of-stock items that the result list hides.",
        ),
    ),
    _related(
        "billing",
        (
            "Downgrade doesn't give a prorated credit",
            "Switching from Business to Team mid-month charges the full new plan with no "
            "credit for the unused time.",
        ),
        (
            "Upgrade only takes effect at the next billing cycle",
            "I paid for Business today but my workspace is still limited to Team features, "
            "and the plan page says Business starts on the 1st. I expected it immediately.",
        ),
    ),
    _related(
        "api",
        (
            "Newly created API keys rejected for an hour",
            "New keys get 401 until the gateway's key cache is rebuilt by the hourly sync.",
        ),
        (
            "Full API key visible in the dashboard after creation",
            "The API keys page shows every key in full, any time, to every admin. Keys should "
            "be shown once at creation and then only as a prefix.",
        ),
    ),
    _related(
        "mobile",
        (
            "Description text invisible in dark mode",
            "Labels on the product page are hard-coded black and vanish on the dark appearance.",
        ),
        (
            "Dark mode for the web storefront",
            "The iOS app has a dark theme, the website doesn't. Could the storefront follow "
            "prefers-color-scheme?",
        ),
    ),
    _related(
        "exports",
        (
            "Export dates use US month/day order",
            "UK merchants read 03/04/2024 as 3 April; exports hard-code %m/%d/%Y.",
        ),
        (
            "Export timestamps are in UTC instead of the store's time zone",
            "Order times in the CSV are UTC, so an order at 11 pm in New York shows as the next "
            "day. Please export times in the store's time zone, or add the offset.",
        ),
    ),
    _related(
        "admin",
        (
            "Fulfillment role can see revenue",
            "Analytics endpoints only check is_staff; staff with the Fulfillment role can open "
            "revenue reports.",
        ),
        (
            "Role changes apply only after the staff member logs out",
            "I removed the Refunds permission from a staff member, but she could keep issuing "
            "refunds until she logged out hours later. Permissions are cached in the session.",
        ),
    ),
    _related(
        "performance",
        (
            "Search slow every evening",
            "Search p99 is 9 s during the 18:00-21:00 peak; the cluster is CPU-bound.",
        ),
        (
            "Exact SKU match isn't the first search result",
            "Typing the full SKU 'TS-1042-BLK' returns the product on page two, below items "
            "that merely contain 'black' in the description. An exact SKU match should rank "
            "first.",
        ),
    ),
    _related(
        "inventory",
        (
            "Last unit sold twice",
            "Concurrent checkouts both pass the stock check; the decrement isn't atomic.",
        ),
        (
            "Back-in-stock emails not sent after a CSV stock import",
            "Customers who clicked 'Notify me' never hear back when we restock through the "
            "CSV inventory import. Restocking by hand in the admin does send the emails.",
        ),
    ),
    _related(
        "notifications",
        (
            "Confirmation emails arrive hours late",
            "The mailer queue is backed up: one Sidekiq process since the infra change.",
        ),
        (
            "Order confirmation email shows the billing address as shipping address",
            "When billing and shipping addresses differ, the confirmation email lists the "
            "billing address under 'Ships to'. The order itself ships to the right place.",
        ),
    ),
    _related(
        "checkout",
        (
            "European cards declined",
            "Payments needing SCA fail with authentication_required because 3DS is never shown.",
        ),
        (
            "Payments over $10,000 rejected",
            "B2B customers placing large orders get 'payment failed'. The payment form has a "
            "hard-coded maximum of $10,000 from years ago; our processor allows far more.",
        ),
    ),
    _related(
        "auth",
        (
            "Can't log in: 'account not found'",
            "I'm sure I have an account, I've ordered from you before with this email. The "
            "login page says no account found. I signed up as Maria.Lopez@outlook.com.",
        ),
        (
            "Login fails when the email has a trailing space",
            "Password managers on Android paste the email with a trailing space. The login "
            "form doesn't trim the input, so the lookup finds no account and says 'account "
            "not found'. Sign-up trims, login doesn't.",
        ),
    ),
    _related(
        "webhooks",
        (
            "Can't verify webhook signatures",
            "HMAC-SHA256 of the raw body never equals X-Shop-Signature; the sender signs "
            "re-serialized JSON.",
        ),
        (
            "Rotate the webhook secret without downtime",
            "When we rotate the webhook signing secret, every delivery fails verification "
            "until we deploy the new one. Please support two active secrets during a rotation "
            "window, like Stripe does.",
        ),
    ),
    _related(
        "mobile",
        (
            "Product images blurry on iPad",
            "The app requests 375px-wide images on every device, which look pixelated on "
            "large retina screens.",
        ),
        (
            "Product images load slowly on cellular",
            "On 4G the product list shows grey boxes for several seconds. Images are full-size "
            "JPEGs with no progressive loading or placeholder, and nothing is cached between "
            "sessions.",
        ),
    ),
    _related(
        "exports",
        (
            "Weekly report CSV has only headers",
            "The Monday report runs before the warehouse ETL finishes, so it's empty.",
        ),
        (
            "Send the weekly report to more than one person",
            "The weekly sales report only goes to the account owner. Our finance and ops "
            "leads need it too. Please allow adding recipients.",
        ),
    ),
    _related(
        "admin",
        (
            "Bulk price change only updates one page",
            "Select-all selects the 50 visible products, so bulk actions skip the rest.",
        ),
        (
            "Bulk price increase rounds to whole dollars",
            "Applying '+10%' to a $19.99 product sets it to $22.00 instead of $21.99. The bulk "
            "price tool rounds to an integer before saving.",
        ),
    ),
    _related(
        "performance",
        (
            "image-resizer memory leak",
            "PIL images never closed; pods OOMKilled every few hours.",
        ),
        (
            "Portrait photos come out sideways in thumbnails",
            "Photos taken upright on a phone appear rotated 90° in product thumbnails. The "
            "resizer ignores the EXIF orientation tag. The full-size image is fine.",
        ),
    ),
    _related(
        "checkout",
        (
            "Guest checkout forces account creation",
            "The v3 checkout ignores allow_guest_checkout and always asks for a password.",
        ),
        (
            "Guest customers can't look up their orders",
            "People who check out as guests have no way to see their order status afterwards. "
            "Add an order lookup by email and order number.",
        ),
    ),
    _related(
        "search",
        (
            "Price sort is lexicographic",
            "Sorting by price puts $100 before $20: the price field is indexed as a string.",
        ),
        (
            "Sort by 'Newest' shows old products first",
            "Choosing 'Newest' lists products from 2019 at the top. The sort uses updated_at, "
            "so any product we edit jumps to the front. It should use the publish date.",
        ),
    ),
    _related(
        "notifications",
        (
            "Unread badge stuck on the bell",
            "Mark-as-read doesn't invalidate the cached unread count; the badge stays for a day.",
        ),
        (
            "Notification center only shows the last 20 notifications",
            "There's no 'load more' in the notification panel. Anything older than the last "
            "20 is unreachable, including order updates I still need.",
        ),
    ),
    _related(
        "billing",
        (
            "Suspended after updating my card",
            "The failed invoice isn't retried with the new default payment method; dunning "
            "suspends the account.",
        ),
        (
            "Failed payment emails go to the owner, not the billing contact",
            "We set billing@ourcompany.com as the billing contact, but payment failure notices "
            "go to our CEO, who is the account owner. They got missed for weeks.",
        ),
    ),
    _related(
        "api",
        (
            "Bulk products endpoint returns 502 over ~800 items",
            "Large bulk requests exceed the load balancer's body or time limit and fail with 502.",
        ),
        (
            "Bulk endpoint silently skips products with duplicate SKUs",
            "If two products in one bulk request share a SKU, the response says 200 OK with "
            "`created: 998` for 1,000 items and no error entries. We only found out because "
            "products were missing.",
        ),
    ),
    _related(
        "mobile",
        (
            "Notification tap opens home instead of the order",
            "Cold-start launches drop the deeplink from the notification payload.",
        ),
        (
            "Push notification titles show HTML entities",
            "A push read 'Your order from Ben &amp; Jerry&#39;s has shipped'. Titles are "
            "HTML-escaped before being sent to APNs and FCM.",
        ),
    ),
    _related(
        "auth",
        (
            "Admin session ends after 30 minutes even while working",
            "No sliding expiration: active admins are logged out 30 minutes after login.",
        ),
        (
            "'Remember me' doesn't survive closing the browser",
            "I tick 'Remember me' on the storefront login, close Chrome, and I'm logged out "
            "the next day. The cookie is set without an expiry, so it's a session cookie.",
        ),
    ),
    _related(
        "exports",
        (
            "Packing slip truncates long titles",
            "Variant names are cut at 40 characters on packing slips.",
        ),
        (
            "One-item packing slip prints on two pages",
            "A packing slip for a single item spills onto a second, blank page on our Zebra "
            "label printer. The PDF page size is Letter, not 4x6.",
        ),
    ),
    _related(
        "admin",
        (
            "Product deletions missing from the audit log",
            "Bulk delete bypasses ProductService, so no audit entry is written.",
        ),
        (
            "Export the audit log",
            "For our SOC 2 audit we need to hand over a year of admin activity. Please add a "
            "CSV export (or an API) for the audit log with filters by user and date.",
        ),
    ),
    _related(
        "performance",
        (
            "Homepage LCP 7.8 s on mobile",
            "The new 4 MB PNG hero banner is the largest contentful paint element.",
        ),
        (
            "Product page jumps while loading (layout shift)",
            "The reviews summary loads late and pushes the 'Add to cart' button down just as "
            "people tap it. CLS is 0.41. Reserve space for the widget.",
        ),
    ),
    _related(
        "inventory",
        (
            "Warehouse stock updates not applied",
            "ShipBob webhooks fail signature checks after a header rename; inventory is stale.",
        ),
        (
            "Storefront and admin disagree on stock by a few units",
            "The admin shows 12 in stock while the product page says 9. The storefront "
            "subtracts units reserved in open carts, the admin doesn't, and neither explains "
            "the difference.",
        ),
    ),
    _related(
        "checkout",
        (
            "Denver sales tax too low",
            "Only the state rate is applied in home-rule states because we don't send the ZIP "
            "to the tax engine.",
        ),
        (
            "Tax-exempt customers are still charged sales tax",
            "A school district with a valid exemption certificate on file was charged tax on "
            "its order. The exemption flag on the customer isn't passed to checkout.",
        ),
    ),
    _related(
        "mobile",
        (
            "Blank screen when offline",
            "Failed feed requests show an empty state instead of the cached feed.",
        ),
        (
            "Browse my wishlist without a connection",
            "Feature request: let me open my wishlist on the plane. Even if prices might be "
            "stale, seeing what I saved would be useful.",
        ),
    ),
    _related(
        "auth",
        (
            "Sign in with Apple fails on the web",
            "Token audience is checked against the bundle id instead of the new Services ID.",
        ),
        (
            "Google sign-in consent screen shows the wrong app name",
            "When signing in with Google, the consent screen says 'shop-staging-oauth' "
            "instead of our shop's name. The production OAuth client still has the staging "
            "display name.",
        ),
    ),
    _related(
        "notifications",
        (
            "Daily digest sent at night in Australia",
            "The digest job ignores the user's time zone and sends everything at 16:00 UTC.",
        ),
        (
            "Digest includes notifications I already read",
            "My daily digest lists the same order updates I already opened in the app that "
            "morning. It should only include unread items.",
        ),
    ),
    _related(
        "search",
        (
            "No results for 'hoodie'",
            "We need synonyms: shoppers say hoodie, our titles say hooded sweatshirt.",
        ),
        (
            "Misspelled searches return nothing",
            "'snekers', 'adiddas', 'jaket' all return zero results. Most shops suggest 'did "
            "you mean' or match with some typo tolerance (fuzziness).",
        ),
    ),
    _related(
        "billing",
        (
            "Canadians see USD prices",
            "Currency detection reads a CDN header that no longer exists after the move to Fastly.",
        ),
        (
            "Currency switcher resets to USD at checkout",
            "I pick CAD in the header, browse with CAD prices, then the checkout page charges "
            "me in USD. The selected currency isn't carried into the checkout session.",
        ),
    ),
    _related(
        "api",
        (
            "SDK fails on nanosecond timestamps",
            "The Go orders service emits 9 fractional digits and Python's fromisoformat "
            "rejects them.",
        ),
        (
            "Async client for the Python SDK",
            "We use asyncio everywhere and have to wrap every SDK call in run_in_executor. An "
            "async client built on httpx would be great.",
        ),
    ),
    _related(
        "admin",
        (
            "iPhone photos rejected as unsupported",
            "The uploader doesn't accept HEIC.",
        ),
        (
            "Uploaded PNG logos lose their transparency",
            "We uploaded our brand logos as transparent PNGs and they show with a black "
            "background on the storefront. The media pipeline converts everything to JPEG.",
        ),
    ),
    _related(
        "exports",
        (
            "Duplicate invoices in QuickBooks",
            "The QuickBooks sync doesn't remember which invoices it already created.",
        ),
        (
            "Xero: post shipping to its own account",
            "Our Xero sync books shipping charges into sales revenue. Our accountant wants "
            "shipping on a separate account code. Please add a mapping setting.",
        ),
    ),
    _related(
        "checkout",
        (
            "Checkout hangs 30 s on 'Processing'",
            "The fraud scoring call has no timeout and the vendor is slow.",
        ),
        (
            "Spinner never stops when the PayPal window is closed",
            "If a customer closes the PayPal popup without paying, our checkout keeps showing "
            "'Processing…' forever. The onCancel callback isn't handled, so the button never "
            "comes back.",
        ),
    ),
    _related(
        "mobile",
        (
            "Back button exits the app from a product page",
            "Navigating from search clears the back stack.",
        ),
        (
            "Product list jumps to the top after returning from a product",
            "Scroll down the category list, open a product, go back, and the list is at the "
            "top again. The RecyclerView state isn't saved when the fragment view is "
            "recreated.",
        ),
    ),
    _related(
        "auth",
        (
            "Account locked after a single failed login",
            "max_failed_attempts was set to 1 by a config change.",
        ),
        (
            "No rate limiting on the login endpoint",
            "Our logs show one IP range trying 40,000 email/password pairs in an hour against "
            "/auth/login. There's no per-IP or global rate limit, only the per-account "
            "lockout. Classic credential stuffing.",
        ),
    ),
    _related(
        "notifications",
        (
            "Slack new-order messages stopped",
            "Bot tokens were revoked after a scope change and the error is swallowed.",
        ),
        (
            "Include the order total in Slack new-order messages",
            "The Slack message says 'New order #1234 from Anna' but not the amount. Our team "
            "would love to see the total (and maybe the items) without opening the admin.",
        ),
    ),
    _related(
        "checkout",
        (
            "Apple Pay button disappeared",
            "The domain association file is 404 after the Next.js migration, so Apple Pay is "
            "off for our domain.",
        ),
        (
            "Google Pay sheet fails with OR_BIBED_06",
            "The Google Pay button shows, but tapping it opens the payment sheet with 'This "
            "merchant is having trouble accepting your payment' (OR_BIBED_06). The gateway "
            "merchant id in the config is the test one.",
        ),
    ),
    _related(
        "exports",
        (
            "Monthly tax report off by a few cents",
            "Per-line rounding in the report versus per-invoice rounding on invoices.",
        ),
        (
            "Monthly report doesn't subtract refunds",
            "Refunded orders are still counted in the monthly sales report at their full "
            "amount, so the report says we sold more than our bank received.",
        ),
    ),
    _related(
        "admin",
        (
            "Admin search fails for emails with '+'",
            "The query isn't URL-encoded, so '+' turns into a space.",
        ),
        (
            "Admin order search takes 20 seconds on large stores",
            "Searching orders by customer name is unusable for shops with a million orders. "
            "It does an ILIKE '%term%' over a join of orders and customers with no index.",
        ),
    ),
    _related(
        "performance",
        (
            "Five-minute outage every night at 2 am",
            "VACUUM FULL on the orders table locks it every night.",
        ),
        (
            "Nightly backups run into business hours",
            "The pg_dump backup now takes six hours and is still running when European "
            "customers start shopping, slowing the database. Switch to incremental or "
            "snapshot backups.",
        ),
    ),
    _related(
        "auth",
        (
            "Verification links expire immediately",
            "Confirmation tokens mix local time and UTC, so they are created already expired.",
        ),
        (
            "Verification emails don't reach Outlook addresses",
            "People signing up with outlook.com and hotmail.com addresses never get the "
            "verification email. Microsoft rejects our mail because the SPF record doesn't "
            "include the new mail provider.",
        ),
    ),
    _related(
        "reviews",
        (
            "Review photos broken",
            "Review images are stored with a private ACL, so the CDN gets 403.",
        ),
        (
            "2 MB limit on review photos is too small",
            "Photos straight from a modern phone are 4-8 MB, so customers get 'file too "
            "large' when adding pictures to a review. Resize on the client or raise the "
            "limit.",
        ),
    ),
    _related(
        "i18n",
        (
            "Checkout layout not mirrored for Arabic",
            "The checkout uses physical CSS properties and no dir=rtl.",
        ),
        (
            "Use Western digits for prices in the Arabic locale",
            "With the Arabic locale, prices are shown in Eastern Arabic numerals (٣٩.٩٩). Our "
            "customers in the UAE and Saudi Arabia expect Western digits on prices, like on "
            "most local shops.",
        ),
    ),
]


# Duplicates reported from the same side (two customers, support and a user, a terse and a
# detailed report): different words, no diagnosis on either side.
SAME_SIDE: list[Pair] = [
    _duplicate(
        "wishlist",
        (
            "Wishlist empties itself after a few days",
            "I save things to my wishlist and when I come back the next week it's empty. I'm "
            "logged in the whole time.",
        ),
        (
            "Saved favourites are gone",
            "Everything I had hearted is missing from 'My favourites' when I come back. It's "
            "happened twice now, both times about a week later. Chrome on Windows, always "
            "signed in.",
        ),
    ),
    _duplicate(
        "gift-cards",
        (
            "Gift card balance shows $0 after I used part of it",
            "I spent $20 of my $50 gift card last week. Now the balance says $0 and checkout "
            "won't accept the card.",
        ),
        (
            "Remaining gift card value lost after first purchase",
            "From support: a customer redeemed a $100 gift card on a $35 order and the card "
            "is now marked as fully used. She should have $65 left. A second customer reported "
            "the same thing today.",
        ),
    ),
    _duplicate(
        "returns",
        (
            "Return label download gives an error",
            "Clicking 'Print return label' on my order shows 'Something went wrong. Try again "
            "later.' I've tried for two days.",
        ),
        (
            "500 on GET /returns/{id}/label.pdf",
            "```\nKeyError: 'carrier_account_id'\n  File \"returns/labels.py\", line 57, in "
            "render_label\n```\nEvery return created since Friday fails to produce a label.",
        ),
    ),
    _duplicate(
        "loyalty",
        (
            "Points not added for my last order",
            "I ordered on the 3rd and it was delivered on the 6th, but my points balance "
            "hasn't changed.",
        ),
        (
            "Haven't received reward points for two orders",
            "Both of my orders were delivered last week, but my rewards have been stuck at "
            "340 points for a month. A friend says hers stopped going up too.",
        ),
    ),
    _duplicate(
        "orders",
        (
            "Ordered size M, received L",
            "The order confirmation and the packing slip both say L, but I'm sure I picked M "
            "on the product page.",
        ),
        (
            "My size choice isn't kept when I add to cart",
            "I chose Medium, clicked Add to cart, and the cart shows Large. I went back, "
            "picked Medium again, same thing. Seems to take the size that was selected first.",
        ),
    ),
    _duplicate(
        "shipping",
        (
            "Tracking link opens the wrong carrier",
            "My parcel is with DHL, but the 'Track package' button opens UPS with my tracking "
            "number, which of course says not found.",
        ),
        (
            "Every tracking number links to ups.com",
            "In the shipping emails and on the order page, the tracking link always goes to "
            "UPS, even for our DHL and USPS shipments. Customers keep writing in.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Can't download my invoice",
            "The 'Download invoice' button in my orders does nothing. Firefox.",
        ),
        (
            "Invoice PDF opens a blank tab in Firefox",
            "Firefox 124: clicking the invoice link opens an empty tab. Chrome downloads the "
            "PDF. The console says 'Blocked opening a blob: URL in a new window'.",
        ),
    ),
    _duplicate(
        "privacy",
        (
            "Deleted my account but still get your emails",
            "I deleted my account two weeks ago and I'm still getting promotional emails "
            "almost every day. Please stop.",
        ),
        (
            "Marketing emails continue after account deletion",
            "Three complaints this week: people who closed their accounts keep receiving our "
            "newsletter. Account deletion doesn't seem to take them off the mailing list. "
            "GDPR risk.",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Product import fails with 'invalid row 1'",
            "I used your template for the product import and every upload fails on row 1.",
        ),
        (
            "CSV import rejects the sample file from the help center",
            "Downloaded the sample CSV from the help article, filled in 20 products, uploaded "
            "it: 'Row 1: unknown column Handle'. The column is right there in the template.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Barcode scanner never focuses",
            "Scanning barcodes in the store with the app is blurry, the camera never focuses. "
            "iPhone 15 Pro.",
        ),
        (
            "Scanner can't read barcodes on the newest iPhone",
            "Up close the camera image stays out of focus, so the scanner doesn't recognise "
            "anything. From further away it's sharp but too small. Other scanner apps work on "
            "the same phone.",
        ),
    ),
    _duplicate(
        "stores",
        (
            "Store locator shows stores in another country",
            "I'm in Belgium and the nearest stores it lists are in Ohio.",
        ),
        (
            "Find a store ignores my postcode",
            "I type 1000 (Brussels) into 'Find a store' and get shops around Cincinnati. "
            "Typing 'Brussels' instead works.",
        ),
    ),
    _duplicate(
        "storefront",
        (
            "Chat bubble covers 'Add to cart' on mobile",
            "On phones the support chat button sits right on top of the Add to cart button on "
            "product pages.",
        ),
        (
            "Can't tap Add to Cart on my phone",
            "Every time I try to press Add to Cart a chat window opens instead. The little "
            "round chat icon is in the way. Android, Chrome.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Confirmation email says 'Hi {{customer.first_name}}'",
            "Customers received 'Hi {{customer.first_name}},' in their order confirmation "
            "this morning. Looks very unprofessional.",
        ),
        (
            "Placeholders show up literally in order emails",
            "Since the email template editor update, variables aren't filled in: 'Hello "
            "{{ customer.first_name }}, your order {{ order.number }} is confirmed'.",
        ),
    ),
    _duplicate(
        "marketing",
        (
            "Newsletter signup says thanks but I'm not subscribed",
            "I entered my email in the footer and got 'Thanks for subscribing!', but I never "
            "get the newsletter and no welcome email came.",
        ),
        (
            "Footer subscribe form doesn't add anyone to Mailchimp",
            "Our Mailchimp audience hasn't grown since the site redesign, although the footer "
            "form shows a success message. No new contacts at all in three weeks.",
        ),
    ),
    _duplicate(
        "storefront",
        (
            "Cookie banner comes back on every page",
            "I accept the cookies and on the next page the banner is there again.",
        ),
        (
            "Cookie consent isn't remembered",
            "Clicking 'Accept all' hides the banner, but as soon as I go to another product "
            "it pops up again. Safari and Firefox, private mode off.",
        ),
    ),
    _duplicate(
        "seo",
        (
            "Google Shopping shows our products at $0.00",
            "Our items appear in Google Shopping results with a price of $0.00. Merchant "
            "Center started warning about price mismatches on Monday.",
        ),
        (
            "Merchant Center: price mismatch on most products",
            "Google Merchant Center disapproved 800 products for 'mismatched value (page "
            "crawl) [price]': Google reads 0 from our product pages while the feed has the "
            "real price.",
        ),
    ),
    _duplicate(
        "storefront",
        (
            "Can't zoom product photos on iPhone",
            "Pinching the product photo does nothing. I want to see the fabric up close.",
        ),
        (
            "Image zoom broken on mobile Safari",
            "Tapping the product image opens the lightbox, but pinch gestures scroll the page "
            "behind it instead of zooming the image. iOS 17.",
        ),
    ),
    _duplicate(
        "storefront",
        (
            "Size guide opens empty",
            "The 'Size guide' link on jeans opens a white box with nothing in it.",
        ),
        (
            "Size chart popup has no content",
            "On several product pages (jeans, jackets) clicking 'Size chart' shows the modal "
            "title and the close button but no table. Shoes are fine.",
        ),
    ),
    _duplicate(
        "recommendations",
        (
            "'You may also like' shows the product I'm looking at",
            "The first item under 'You may also like' is the same jacket I'm viewing.",
        ),
        (
            "Recommendations include the current product",
            "On product pages the recommendation carousel often starts with the product "
            "itself. It should be excluded.",
        ),
    ),
    _duplicate(
        "marketing",
        (
            "Got a 'you forgot something' email after buying",
            "I bought the shoes yesterday and this morning I got an email saying I left them "
            "in my cart, with a discount code. Bit annoying since I paid full price.",
        ),
        (
            "Abandoned cart emails go out for completed orders",
            "Several customers complained they got the cart reminder hours after paying for "
            "the same items. One asked for the reminder's 10% discount to be refunded.",
        ),
    ),
    _duplicate(
        "billing",
        (
            "Confirmation email shows dollars, I paid in euros",
            "I paid €89.00 but the confirmation email says $89.00 total.",
        ),
        (
            "Order emails show the wrong currency symbol",
            "Our EU customers see '$' in their order confirmation and invoice emails although "
            "they were charged in EUR. The amount is right, only the currency is wrong.",
        ),
    ),
    _duplicate(
        "teams",
        (
            "Invite link says 'invalid or expired' right away",
            "I invited a colleague and she gets 'This invitation is invalid or has expired' "
            "when she clicks the link, a few minutes after I sent it.",
        ),
        (
            "Team invitations don't work",
            "Invited three people to our workspace. All of them get an error page saying the "
            "invitation is invalid. Sent ten minutes ago. Resending doesn't help.",
        ),
    ),
    _duplicate(
        "subscriptions",
        (
            "Subscribe & Save order charged but not shipped",
            "My monthly coffee subscription charged my card on the 1st but nothing was sent "
            "and the order page shows no shipment.",
        ),
        (
            "Recurring order paid, never sent",
            "I'm on a monthly delivery plan for dog food. This month I was billed as usual "
            "but the package never came and there's no tracking number.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "Search keyboard closes after every letter on Android",
            "Typing in the app's search box: after each letter the keyboard disappears and I "
            "have to tap the box again.",
        ),
        (
            "Android: search field loses focus while typing",
            "Since 5.4 the search input loses focus after each character, probably because "
            "the suggestions list refreshes. Samsung S22 and Pixel 6.",
        ),
    ),
    _duplicate(
        "checkout",
        (
            "Checkout page keeps reloading",
            "When I get to the payment step the page reloads over and over and I can't enter "
            "my card.",
        ),
        (
            "Infinite reload loop on the payment step",
            "Reproduced: add anything to the cart, go to checkout, fill the address, continue "
            "to payment. The page refreshes every second or so. Chrome 123, logged out.",
        ),
    ),
    _duplicate(
        "auth",
        (
            "'Too many redirects' when logging in",
            "After entering my password the browser says the page isn't working: redirected "
            "you too many times.",
        ),
        (
            "ERR_TOO_MANY_REDIRECTS after sign in",
            "Chrome shows ERR_TOO_MANY_REDIRECTS right after a successful sign in. Clearing "
            "cookies fixes it for one login.",
        ),
    ),
    _duplicate(
        "account",
        (
            "Can't change my default shipping address",
            "I save a new default address in my account, it says 'Saved', but the old address "
            "is still the default and checkout uses it.",
        ),
        (
            "Default address doesn't update",
            "Customers report that setting a new default address in their profile has no "
            "effect; the previous default keeps being selected at checkout.",
        ),
    ),
    _duplicate(
        "notifications",
        (
            "Emails arrive in Spanish though my account is in English",
            "My language is set to English but all order emails come in Spanish.",
        ),
        (
            "Wrong language in transactional emails",
            "Several customers with English accounts receive shipping and order emails in "
            "Spanish. Maybe it's using the browser language from checkout?",
        ),
    ),
    _duplicate(
        "admin",
        (
            "Customer order notes not visible in admin",
            "Customers say they left a note at checkout (like 'leave at the back door') but we "
            "don't see it anywhere on the order.",
        ),
        (
            "Checkout comment missing on the order page",
            "The 'Notes for your order' text that customers enter at checkout isn't shown in "
            "the admin order view or on the packing slip.",
        ),
    ),
    _duplicate(
        "api",
        (
            "API 500 when filtering orders by status=refunded",
            "`GET /v2/orders?status=refunded` returns 500 Internal Server Error. Other "
            "statuses work.",
        ),
        (
            "Can't list refunded orders through the API",
            "Our accounting connector asks your API for refunded orders every night and it "
            "has failed with a server error for a week. Paid and cancelled orders come "
            "through.",
        ),
    ),
    _duplicate(
        "mobile",
        (
            "App freezes when I add something to the cart",
            "iPhone app: I tap 'Add to bag' and the whole app freezes, I have to force quit.",
        ),
        (
            "iOS app hangs on Add to Bag",
            "Since 4.13, tapping Add to Bag on a product with variants locks the UI "
            "completely. Force quitting is the only way out. iPhone 12, iOS 17.3.",
        ),
    ),
    _duplicate(
        "exports",
        (
            "Product export is missing variants",
            "Exported our products to CSV and there's only one row per product, none of the "
            "sizes or colours.",
        ),
        (
            "Only parent products in the product CSV",
            "The product export lists 300 products but we have 2,400 variants. We need one "
            "row per variant with its SKU and stock to update our ERP.",
        ),
    ),
    _duplicate(
        "performance",
        (
            "Admin product list takes forever to load",
            "Since we passed 10,000 products, opening Products in the admin takes almost a minute.",
        ),
        (
            "Backoffice products page very slow for big catalogs",
            "Our catalog has 12k items and the products list in the backoffice needs 40-60 "
            "seconds to appear. Orders and customers pages are quick.",
        ),
    ),
    _duplicate(
        "shipping",
        (
            "Express shipping not offered for my postcode",
            "I'm in Leeds (LS6) and only standard shipping shows at checkout. My sister in "
            "London gets express.",
        ),
        (
            "Express delivery option missing outside London",
            "Customers outside London postcodes say they can't choose next-day delivery, "
            "although we offer it UK-wide.",
        ),
    ),
    _duplicate(
        "reviews",
        (
            "Product shows 0 stars even with reviews",
            "The lamp has 23 reviews, mostly 5 stars, but the stars at the top of the page "
            "are all empty.",
        ),
        (
            "Average rating displays as empty stars",
            "On product pages the rating summary shows five grey stars and '(23)', while the "
            "reviews below are mostly 4-5 stars.",
        ),
    ),
    _duplicate(
        "i18n",
        (
            "French prices show a dot instead of a comma",
            "On the French site prices look like '39.90 €' instead of '39,90 €'.",
        ),
        (
            "Wrong decimal separator for fr-FR",
            "The French storefront formats amounts with a period as the decimal separator. "
            "French customers expect a comma; a few asked if the price was 3990 euros.",
        ),
    ),
    _duplicate(
        "accessibility",
        (
            "Checkout errors not read by screen reader",
            "With NVDA, when I submit the address form with a mistake nothing is announced. I "
            "don't know what's wrong.",
        ),
        (
            "Validation messages on checkout are silent for assistive tech",
            "A blind customer emailed: the checkout shows red error text but her screen "
            "reader says nothing, so she couldn't finish the order.",
        ),
    ),
    _duplicate(
        "inventory",
        (
            "'Only 2 left' on products we have plenty of",
            "Lots of products show the 'Only 2 left!' badge even though we have hundreds in stock.",
        ),
        (
            "Low stock badge on well-stocked items",
            "The low stock warning appears on products with 300+ units. Customers might "
            "think it's a fake urgency trick.",
        ),
    ),
    _duplicate(
        "webhooks",
        (
            "order.paid webhook sent twice",
            "We receive every order.paid webhook twice, a few seconds apart, with different "
            "delivery ids.",
        ),
        (
            "Duplicate payment events to our endpoint",
            "Our ERP booked several orders twice because your webhook told us twice that the "
            "order was paid.",
        ),
    ),
    _duplicate(
        "storefront",
        (
            "My question on the product page never appears",
            "I asked a question about the dimensions under 'Questions & answers' three days "
            "ago and it's not there.",
        ),
        (
            "Submitted product questions disappear",
            "Customers post questions in the product Q&A section, get 'Thanks, your question "
            "was submitted', and the questions never show up, neither on the page nor in "
            "our admin.",
        ),
    ),
]

# Related non-duplicates reported from the same side, the counterpart of SAME_SIDE.
RELATED_SAME_SIDE: list[Pair] = [
    _related(
        "wishlist",
        (
            "Wishlist items disappear after a week",
            "Things I save to my wishlist are gone when I come back a week later.",
        ),
        (
            "Share my wishlist with a link",
            "I'd love to send my wishlist to my family before my birthday. Could there be a "
            "share button that makes a public link?",
        ),
    ),
    _related(
        "gift-cards",
        (
            "Gift card balance gone after partial use",
            "Used part of my gift card, the rest of the balance vanished.",
        ),
        (
            "Gift card email never reached the recipient",
            "I bought a digital gift card for my brother and scheduled it for his birthday. "
            "He never got the email and I can't see a way to resend it.",
        ),
    ),
    _related(
        "returns",
        (
            "Return label won't download",
            "'Print return label' gives 'Something went wrong'.",
        ),
        (
            "Return window says 14 days but the policy says 30",
            "The returns page in my account says my return window has closed after 14 days, "
            "but your returns policy clearly says 30 days.",
        ),
    ),
    _related(
        "loyalty",
        (
            "Reward points not credited",
            "My last two delivered orders didn't add any points.",
        ),
        (
            "Can't use points together with a discount code",
            "When I apply a promo code, the option to pay part with my points disappears. "
            "Other shops allow both. Is that intended?",
        ),
    ),
    _related(
        "orders",
        (
            "Received the wrong size",
            "Picked M, the cart and the order say L.",
        ),
        (
            "Sold-out sizes look selectable",
            "On the size dropdown, sizes that are sold out aren't greyed out. I picked XS, "
            "clicked add to cart, and only then got 'out of stock'.",
        ),
    ),
    _related(
        "shipping",
        (
            "Tracking link goes to UPS for a DHL parcel",
            "The Track package button always opens UPS.",
        ),
        (
            "Tracking status in the app hasn't updated for days",
            "The app has said 'Label created' for five days, but the carrier's site shows my "
            "parcel was delivered yesterday.",
        ),
    ),
    _related(
        "billing",
        (
            "Invoice download does nothing in Firefox",
            "The invoice link opens an empty tab in Firefox.",
        ),
        (
            "Invoice still shows my old company name",
            "We changed our company name in the account settings last month. New invoices "
            "still have the old name on them, and our bookkeeper needs them corrected.",
        ),
    ),
    _related(
        "privacy",
        (
            "Still getting emails after deleting my account",
            "Account deleted, newsletter keeps coming.",
        ),
        (
            "No way to delete my account",
            "I want to delete my account and all my data, but there's no option anywhere in "
            "the settings. Under GDPR I have the right to erasure.",
        ),
    ),
    _related(
        "admin",
        (
            "CSV import fails on row 1 with the official template",
            "'Row 1: unknown column Handle' using your own sample file.",
        ),
        (
            "Import creates duplicates instead of updating products",
            "I re-imported our product CSV with new prices, and instead of updating the "
            "existing products it created a second copy of every product.",
        ),
    ),
    _related(
        "mobile",
        (
            "Scanner doesn't focus on iPhone 15 Pro",
            "Barcodes up close stay blurry in the app scanner.",
        ),
        (
            "Scanned product shows the wrong price",
            "When I scan a shelf barcode the app finds the right product but shows the online "
            "price, not the price in the store I'm standing in.",
        ),
    ),
    _related(
        "stores",
        (
            "Store finder ignores my Belgian postcode",
            "Postcode search in 'Find a store' returns stores in Ohio.",
        ),
        (
            "Store opening hours wrong on public holidays",
            "The store page said our Antwerp shop was open on Easter Monday. Customers came "
            "to a closed door. Holiday hours aren't shown.",
        ),
    ),
    _related(
        "storefront",
        (
            "Chat button covers Add to cart on phones",
            "The chat icon sits on top of the Add to cart button on mobile.",
        ),
        (
            "Chat says agents are offline during business hours",
            "At 11 am on a Tuesday the chat widget says 'We're offline, leave a message', "
            "though our support team is online and waiting.",
        ),
    ),
    _related(
        "notifications",
        (
            "Template variables shown raw in confirmation emails",
            "Customers get 'Hi {{customer.first_name}}' in their emails.",
        ),
        (
            "Order confirmation images broken in Outlook",
            "In Outlook desktop the logo and product pictures in our order confirmation show "
            "as red crosses. Gmail and Apple Mail are fine.",
        ),
    ),
    _related(
        "marketing",
        (
            "Newsletter signup doesn't subscribe me",
            "The footer form says thanks but I never get the newsletter.",
        ),
        (
            "Newsletter welcome code doesn't work",
            "I got the welcome email with WELCOME10, but at checkout it says 'this code is "
            "not valid'.",
        ),
    ),
    _related(
        "storefront",
        (
            "Cookie banner reappears on every page",
            "Accepting cookies isn't remembered between pages.",
        ),
        (
            "Cookie banner has no 'Reject all' button",
            "Our banner only offers 'Accept all' and 'Settings'. Regulators in France and "
            "Germany require rejecting to be as easy as accepting.",
        ),
    ),
    _related(
        "seo",
        (
            "Google shows our prices as $0.00",
            "Merchant Center reports price mismatches; Google reads 0 on our product pages.",
        ),
        (
            "New products don't show up in Google",
            "Products we added in the last two months aren't indexed. Our sitemap.xml still "
            "lists only the products from before the migration.",
        ),
    ),
    _related(
        "storefront",
        (
            "Pinch to zoom doesn't work on product images",
            "Pinching in the image lightbox scrolls the page on iPhone.",
        ),
        (
            "Product gallery images in the wrong order",
            "We set the main photo first in the admin, but on the product page the gallery "
            "starts with the third photo (the label close-up).",
        ),
    ),
    _related(
        "storefront",
        (
            "Size guide popup is empty",
            "The size chart opens without a table on jeans and jackets.",
        ),
        (
            "Size guide in inches, please",
            "The size guide only shows centimetres. US customers have to convert everything. "
            "A cm/in toggle would help.",
        ),
    ),
    _related(
        "recommendations",
        (
            "Recommendations show the current product",
            "'You may also like' starts with the product on the page.",
        ),
        (
            "Recommendations ignore what I've bought",
            "I bought a tent last month and the shop still recommends tents everywhere. It "
            "would be more useful to suggest things that go with it.",
        ),
    ),
    _related(
        "marketing",
        (
            "Cart reminder email after I already ordered",
            "Got the abandoned cart email for items I had paid for.",
        ),
        (
            "Abandoned cart email link opens an empty cart",
            "I clicked 'Complete your order' in the reminder email and my cart was empty, on "
            "my phone. The items were in the cart on my laptop.",
        ),
    ),
    _related(
        "billing",
        (
            "EUR orders show $ in the confirmation email",
            "The amount is right but the currency symbol in emails is always $.",
        ),
        (
            "Can't pay in Swiss francs",
            "We're a Swiss shop and want to charge CHF, but CHF isn't in the list of "
            "supported store currencies.",
        ),
    ),
    _related(
        "teams",
        (
            "Invitation links say invalid",
            "Team invites fail with 'invalid or expired' minutes after sending.",
        ),
        (
            "Can't remove a team member who left",
            "A colleague left the company. When I click 'Remove' next to her name, nothing "
            "happens and she still has access.",
        ),
    ),
    _related(
        "subscriptions",
        (
            "Subscription charged but nothing shipped",
            "This month's recurring order was billed but never sent.",
        ),
        (
            "Let me skip a month on my subscription",
            "I'm travelling in August and don't need my coffee delivery. I can only cancel "
            "or pause indefinitely. A 'skip next delivery' button would be great.",
        ),
    ),
    _related(
        "mobile",
        (
            "Keyboard closes after each letter in Android search",
            "The search box loses focus while typing since 5.4.",
        ),
        (
            "Recent searches missing on Android",
            "The iOS app shows my recent searches when I tap the search box; the Android app "
            "shows nothing.",
        ),
    ),
    _related(
        "checkout",
        (
            "Payment page reloads in a loop",
            "The payment step refreshes every second and I can't enter my card.",
        ),
        (
            "Checkout forgets my address when I go back",
            "On the payment step I noticed a typo, clicked back to the address step, and all "
            "the fields were empty. Had to type everything again.",
        ),
    ),
    _related(
        "auth",
        (
            "Redirect loop after signing in",
            "ERR_TOO_MANY_REDIRECTS right after login.",
        ),
        (
            "Blank page after logging out",
            "When I click 'Log out', I end up on a white page with nothing on it. I have to "
            "type the shop address again.",
        ),
    ),
    _related(
        "account",
        (
            "New default address not saved",
            "Setting a new default shipping address has no effect.",
        ),
        (
            "Can't add a second shipping address",
            "I want to keep my home and my work address, but my account only lets me store "
            "one address.",
        ),
    ),
    _related(
        "i18n",
        (
            "Order emails in Spanish for English accounts",
            "Transactional emails ignore the account language.",
        ),
        (
            "Site switches to Spanish while I'm on holiday in Spain",
            "I'm British, on holiday in Málaga, and the website is suddenly in Spanish. It "
            "should remember my language instead of guessing from my location.",
        ),
    ),
    _related(
        "admin",
        (
            "Customer checkout notes not visible",
            "Notes customers write at checkout don't appear on the order.",
        ),
        (
            "Add internal notes to orders",
            "Our team needs to leave notes on an order for each other ('customer called, "
            "wants gift wrap') that the customer doesn't see.",
        ),
    ),
    _related(
        "api",
        (
            "Refunded orders filter returns 500",
            "status=refunded on /v2/orders fails with a server error.",
        ),
        (
            "'partially_refunded' status isn't documented",
            "The API returns orders with status 'partially_refunded', which isn't in the "
            "docs' list of order statuses. Our parser rejected them.",
        ),
    ),
    _related(
        "mobile",
        (
            "iOS app freezes on Add to Bag",
            "Tapping Add to Bag locks the app since 4.13.",
        ),
        (
            "Bag badge shows the wrong number of items",
            "The little number on the bag icon says 5 but my bag has 2 items. It seems to "
            "count items I removed.",
        ),
    ),
    _related(
        "exports",
        (
            "Product CSV lacks variants",
            "The export has one row per product, no sizes or colours.",
        ),
        (
            "Image links in the product export stop working",
            "The image URLs in the product CSV work when I export, but an hour later they "
            "return 'Access denied'. Our marketplace feed needs permanent links.",
        ),
    ),
    _related(
        "performance",
        (
            "Admin products page slow for 10k+ products",
            "Opening Products in the admin takes up to a minute.",
        ),
        (
            "Admin product search doesn't find SKUs",
            "Typing a SKU like 'JK-2231-NV' into the admin product search finds nothing. It "
            "only searches titles.",
        ),
    ),
    _related(
        "shipping",
        (
            "No express option outside London",
            "Express shipping isn't offered for most UK postcodes.",
        ),
        (
            "Express parcel arrived two days late",
            "I paid £9.95 for next-day delivery and the parcel came two days later. Can I get "
            "the shipping cost back?",
        ),
    ),
    _related(
        "reviews",
        (
            "Star rating shows empty stars",
            "The rating summary is empty although there are 23 good reviews.",
        ),
        (
            "Sort reviews by most helpful",
            "Products with hundreds of reviews show the newest first. Please add 'most "
            "helpful' and 'lowest rating' sorting.",
        ),
    ),
    _related(
        "i18n",
        (
            "Decimal point instead of comma on the French site",
            "fr-FR prices use a dot as decimal separator.",
        ),
        (
            "Typos in the French product pages",
            "The French site says 'Ajouter au panie' on the button and 'Livraison gratuit' in "
            "the banner. Please have someone proofread.",
        ),
    ),
    _related(
        "accessibility",
        (
            "Screen reader doesn't announce checkout errors",
            "Validation errors are not read by NVDA.",
        ),
        (
            "Disabled buttons have too little contrast",
            "The grey-on-grey disabled 'Continue' button is almost invisible for low vision "
            "users. Contrast ratio is 1.6:1.",
        ),
    ),
    _related(
        "inventory",
        (
            "'Only 2 left' on well-stocked products",
            "The low stock badge shows on products with hundreds of units.",
        ),
        (
            "Sold-out products can be added from quick view",
            "The product page correctly says 'Sold out', but the quick view popup on the "
            "category page still has an active Add to cart button.",
        ),
    ),
    _related(
        "webhooks",
        (
            "order.paid webhook arrives twice",
            "Each order.paid event is delivered twice with different ids.",
        ),
        (
            "No webhook when an admin cancels an order",
            "When we cancel an order from the admin, our endpoint never gets order.cancelled. "
            "Cancellations by the customer do send it.",
        ),
    ),
    _related(
        "storefront",
        (
            "Product questions never appear",
            "Questions submitted in product Q&A vanish.",
        ),
        (
            "Email me when my question is answered",
            "I asked a question on a product and had to keep checking back. Please send an "
            "email when someone answers.",
        ),
    ),
]

PAIRS: list[Pair] = SYMPTOM_AND_CAUSE + SAME_SIDE + RELATED + RELATED_SAME_SIDE
