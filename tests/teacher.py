"""Hand-written teacher replies in the GEM formats, served by the fake OpenAI server.

``teacher_reply(body, n)`` looks at the prompt (which stage asks, about which
example text, and whether it is a repair request) and answers as a capable
teacher would, with a few deliberate faults: a broken ``<func>`` that a repair
fixes, one that stays broken, a workflow with an invalid tool, a refinement
that makes two calls in one turn.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fake_openai import Reply

RELEVANCE = {
    "Northwind": """<multi_step>True</multi_step>
<summary>Returning an item bought online at Northwind Store.</summary>
<domain>Shopping</domain>
<platform>computer</platform>
<task>ecommerce_and_retail</task>""",
    "Teamdesk": """```
<multi_step>True</multi_step>
<summary>Scheduling and cancelling meetings in Teamdesk Calendar.</summary>
<domain>business_and_industrial, Internet & Telecom</domain>
<platform>computer</platform>
<task>calendar_management</task>
```""",
    "printing press": """<multi_step>False</multi_step>
<summary>A history of the printing press; it teaches no operation.</summary>
<domain>books_and_literature</domain>
<platform>other</platform>
<task>research_and_data</task>""",
    "Heatly": """<multi_step>True</multi_step>
<summary>Programming a weekly heating schedule on a smart thermostat.</summary>
<domain>home_and_garden</domain>
<platform>phone</platform>
<task>smart home</task>""",
    "Finbank": """<multi_step>True</multi_step>
<summary>Sending an international bank transfer online.</summary>
<domain>finance</domain>
<platform>web browser</platform>
<task>financial_trading</task>""",
}

EXTRACTION = {
    "Northwind": """<workflow>
<description>Return an item from a recent online order and choose a refund method.</description>
<steps>Step1: Sign in with email and password.
Step2: Find the order holding the item (delivered within 30 days).
Step3: Start a return for the item with a reason.
Step4: Choose the refund method.
Step5: Get the prepaid return label.</steps>
<execution_graph>(login)->(list_orders)->(get_order)->(create_return)->(get_return_label)</execution_graph>
<actions>[{"name": "login", "arguments": {"email": "ana@example.com", "password": "s3cret"}},
{"name": "list_orders", "arguments": {"session_token": "tok_1"}},
{"name": "get_order", "arguments": {"session_token": "tok_1", "order_id": "NW-1042"}},
{"name": "create_return", "arguments": {"session_token": "tok_1", "order_id": "NW-1042", "item_id": "IT-7", "reason": "wrong_size", "refund_method": "store_credit"}},
{"name": "get_return_label", "arguments": {"session_token": "tok_1", "return_id": "RT-88"}}]</actions>
<tools>[
{"name": "login", "description": "Sign in to a Northwind account.", "inputSchema": {"type": "object", "properties": {"email": {"type": "string", "description": "Account email."}, "password": {"type": "string", "description": "Account password."}}, "required": ["email", "password"]}},
{"name": "list_orders", "description": "List the signed-in customer's orders.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string", "description": "Token from login."}}, "required": ["session_token"]}},
{"name": "get_order", "description": "Read one order with its items and delivery date.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string", "description": "Token from login."}, "order_id": {"type": "string", "description": "Order ID."}}, "required": ["session_token", "order_id"]}},
{"name": "create_return", "description": "Start a return for one item of a delivered order (within 30 days; not final-sale items or gift cards).", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string", "description": "Token from login."}, "order_id": {"type": "string", "description": "Order ID."}, "item_id": {"type": "string", "description": "Item to return."}, "reason": {"type": "string", "enum": ["damaged", "wrong_size", "changed_my_mind"], "description": "Why it is returned."}, "refund_method": {"type": "string", "enum": ["original_card", "store_credit"], "description": "How to refund."}}, "required": ["session_token", "order_id", "item_id", "reason", "refund_method"]}},
{"name": "get_return_label", "description": "Get the prepaid label of a return (valid 14 days).", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string", "description": "Token from login."}, "return_id": {"type": "string", "description": "Return ID."}}, "required": ["session_token", "return_id"]}},
]</tools>
</workflow>""",
    "Teamdesk": """Here are the workflows.
<workflow>
<description>Schedule a meeting with colleagues and book a room.</description>
<steps>Step1: Find a slot when every attendee is free within working hours.
Step2: Book a room that fits the attendees, for at most 4 hours.
Step3: Create the event and send the invitation.</steps>
<execution_graph>(find_free_slots)->(book_room)->(create_event)</execution_graph>
<actions>[{"name": "find_free_slots", "arguments": {"attendees": ["li@teamdesk.io", "sam@teamdesk.io"], "duration_minutes": 60, "date": "2026-12-02"}},
{"name": "book_room", "arguments": {"building": "HQ", "capacity": 3, "start": "2026-12-02T10:00", "duration_minutes": 60}},
{"name": "create_event", "arguments": {"title": "Design review", "attendees": ["li@teamdesk.io", "sam@teamdesk.io"], "start": "2026-12-02T10:00", "duration_minutes": 60, "room_id": "HQ-4B"}}]</actions>
<tools>[
{"name": "find_free_slots", "description": "Slots when all attendees are free, within 8:00-18:00 in each attendee's time zone.", "parameters": {"type": "object", "properties": {"attendees": {"type": "array", "items": {"type": "string"}, "description": "Attendee emails."}, "duration_minutes": {"type": "integer", "description": "Meeting length."}, "date": {"type": "string", "description": "Day to search, YYYY-MM-DD."}}, "required": ["attendees", "duration_minutes", "date"]}},
{"name": "book_room", "description": "Hold a room for at most 4 hours.", "parameters": {"type": "object", "properties": {"building": {"type": "string", "description": "Building name."}, "capacity": {"type": "integer", "description": "People to seat."}, "start": {"type": "string", "description": "Start time, ISO 8601."}, "duration_minutes": {"type": "integer", "maximum": 240, "description": "Hold length."}}, "required": ["building", "capacity", "start", "duration_minutes"]}},
{"name": "create_event", "description": "Create the event and invite the attendees.", "parameters": {"type": "object", "properties": {"title": {"type": "string", "description": "Event title."}, "attendees": {"type": "array", "items": {"type": "string"}, "description": "Attendee emails."}, "start": {"type": "string", "description": "Start time, ISO 8601."}, "duration_minutes": {"type": "integer", "description": "Length."}, "room_id": {"type": "string", "description": "Booked room."}}, "required": ["title", "attendees", "start", "duration_minutes"]}}
]</tools>
</workflow>
<workflow>
<description>Cancel a meeting and notify the attendees.</description>
<steps>Step1: Open the event.
Step2: Cancel it, which notifies everyone.</steps>
<execution_graph>(get_event)->(cancel_event)</execution_graph>
<actions>[{"name": "get_event", "arguments": {"event_id": "EV-3"}}, {"name": "cancel_event", "arguments": {"event_id": "EV-3"}}]</actions>
<tools>[
{"name": "get_event", "description": "Read an event.", "parameters": {"type": "object", "properties": {"event_id": {"type": "string", "description": "Event ID."}}, "required": ["event_id"]}},
{"name": "cancel_event", "description": "Cancel an event and notify everyone.", "parameters": {"type": "object", "properties": {"event_id": {"type": "banana", "description": "Event ID."}}, "required": ["event_id"]}}
]</tools>
</workflow>""",
    "Heatly": """<workflow>
<description>Program a weekly heating schedule on a Heatly thermostat.</description>
<steps>Step1: Pick the home and its thermostat.
Step2: Set time blocks with target temperatures for chosen days.
Step3: Save the schedule, replacing the old one.</steps>
<execution_graph>(list_thermostats)->(get_schedule)->(set_schedule)</execution_graph>
<actions>[{"name": "list_thermostats", "arguments": {"home_id": "H-12"}}, {"name": "get_schedule", "arguments": {"thermostat_id": "T-5"}}, {"name": "set_schedule", "arguments": {"thermostat_id": "T-5", "days": ["mon"], "blocks": [{"start": "07:00", "celsius": 21}]}}]</actions>
<tools>[
{"name": "list_thermostats", "description": "Thermostats of a home.", "inputSchema": {"type": "object", "properties": {"home_id": {"type": "string", "description": "Home ID."}}, "required": ["home_id"]}},
{"name": "get_schedule", "description": "Current weekly schedule of a thermostat.", "inputSchema": {"type": "object", "properties": {"thermostat_id": {"type": "string", "description": "Thermostat ID."}}, "required": ["thermostat_id"]}},
{"name": "set_schedule", "description": "Replace the schedule for the given days; at most six blocks a day, 5-30 degrees.", "inputSchema": {"type": "object", "properties": {"thermostat_id": {"type": "string", "description": "Thermostat ID."}, "days": {"type": "array", "items": {"type": "string", "enum": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, "description": "Days the schedule applies to."}, "blocks": {"type": "array", "maxItems": 6, "items": {"type": "object", "properties": {"start": {"type": "string"}, "celsius": {"type": "number", "minimum": 5, "maximum": 30}}, "required": ["start", "celsius"]}, "description": "Time blocks."}}, "required": ["thermostat_id", "days", "blocks"]}}
]</tools>
</workflow>""",
    "Finbank": """<workflow>
<description>Send an international transfer.</description>
<steps>Step1: Log in with a one-time code.
Step2: Enter recipient, amount and currency, then confirm.</steps>
<execution_graph>(login)->(send_transfer)</execution_graph>
<actions>[{"name": "login", "arguments": {"user_id": "u1", "otp": "123456"}}, {"name": "send_transfer", "arguments": {"iban": "DE44500105175407324931", "amount": 250, "currency": "EUR"}}]</actions>
<tools>[
{"name": "login", "description": "Log in with a one-time code.", "inputSchema": {"type": "object", "properties": {"user_id": {"type": "string"}, "otp": {"type": "string"}}, "required": ["user_id", "otp"]}},
{"name": "send_transfer", "description": "Send an international transfer; above 10,000 EUR needs a card-reader confirmation.", "inputSchema": {"type": "object", "properties": {"iban": {"type": "string"}, "amount": {"type": "number"}, "currency": {"type": "string"}}, "required": ["iban", "amount", "currency"]}}
]</tools>
</workflow>""",
}

GENERATION = {
    "Northwind": """<system>You are the Northwind Store returns assistant. Rules: a customer must be signed in before any order is read. Only items from orders delivered in the last 30 days can be returned. Final-sale items and gift cards cannot be returned. Refunds go to the original card (5-7 business days) or store credit (immediate). Confirm the item, reason and refund method with the customer before creating a return. Return labels are valid for 14 days.</system>
<user>Hi, I need to send back the hiking boots I got last week, they're too small.</user>
<assistant>I can help with that. First I need to sign you in: what are the email and password of your Northwind account?</assistant>
<user>It's maria.lopez@example.com and the password is Trail2026!</user>
<assistant><func>{"name": "login", "arguments": {"email": "maria.lopez@example.com", "password": "Trail2026!"}}</func></assistant>
<tool>{"session_token": "tok_5521", "customer_id": "C-3307"}</tool>
<assistant><func>{"name": "list_orders", "arguments": {"session_token": "tok_5521"}}</func></assistant>
<tool>{"orders": [{"order_id": "NW-20931", "delivered_on": "2026-11-14", "total": 148.5}, {"order_id": "NW-19877", "delivered_on": "2026-09-02", "total": 32.0}]}</tool>
<assistant><func>{"name": "get_order", "arguments": {"session_token": "tok_5521", "order_id": "NW-20931"}}</func></assistant>
<tool>{"order_id": "NW-20931", "delivered_on": "2026-11-14", "items": [{"item_id": "IT-551", "name": "Ridge hiking boots, size 39", "final_sale": false}, {"item_id": "IT-552", "name": "Gift card 20 EUR", "final_sale": true}]}</tool>
<assistant>I found order NW-20931, delivered on 14 November, with the Ridge hiking boots (size 39). They can be returned. Would you like the refund on your original card (5-7 business days) or as store credit (immediate)?</assistant>
<user>Store credit is fine. And can I return the gift card too?</user>
<assistant>Gift cards cannot be returned, so I can only return the boots. To confirm: return item IT-551 from order NW-20931, reason wrong size, refund as store credit. Shall I go ahead?</assistant>
<user>Yes please.</user>
<assistant><func>{"name": "create_return", "arguments": {"session_token": "tok_5521", "order_id": "NW-20931", "item_id": "IT-551", "reason": "wrong_size", "refund_method": "store_credit"}}</func></assistant>
<tool>{"return_id": "RT-7710", "status": "created", "store_credit": 89.9}</tool>
<assistant><func>{"name": "get_return_label", "arguments": {"session_token": "tok_5521", "return_id": "RT-7710"}}</func></assistant>
<tool>{"return_id": "RT-7710", "label_url": "https://northwind.example/labels/RT-7710.pdf", "valid_until": "2026-12-05"}</tool>
<assistant>Done: return RT-7710 is created and 89.90 EUR of store credit is on your account. Print the label from https://northwind.example/labels/RT-7710.pdf and drop the parcel at a partner post office by 5 December.</assistant>""",
    "Teamdesk": """<system>You are a Teamdesk Calendar assistant. Meetings can only be booked between 8:00 and 18:00 in each attendee's time zone. A room holds at most 4 hours. Check availability before booking; never invent attendee emails.</system>
<user>Set up a one-hour design review with Li and Sam next Wednesday, 2 December, in HQ.</user>
<assistant>Which email addresses should I invite for Li and Sam?</assistant>
<user>li.wei@teamdesk.io and sam.okafor@teamdesk.io</user>
<assistant><func>{"name": "find_free_slots", "arguments": {"attendees": ["li.wei@teamdesk.io", "sam.okafor@teamdesk.io"], "duration_minutes": 60, "date": "2026-12-02"}}</func></assistant>
<tool>{"slots": ["2026-12-02T10:00", "2026-12-02T15:30"]}</tool>
<assistant>Both are free at 10:00 or 15:30. Which do you prefer?</assistant>
<user>10:00. Book a room for three.</user>
<assistant><func>{"name": "book_room", "arguments": {"building": "HQ", "capacity": 3, "start": "2026-12-02T10:00", "duration_minutes": 60}}</func></assistant>
<tool>{"room_id": "HQ-4B", "held_until": "2026-12-02T11:00"}</tool>
<assistant><func>{"name": "create_event", "arguments": {"title": "Design review", "attendees": ["li.wei@teamdesk.io", "sam.okafor@teamdesk.io"], "start": "2026-12-02T10:00", "duration_minutes": 60, "room_id": "HQ-4B"}}</func></assistant>
<tool>{"event_id": "EV-8812", "invitations_sent": 2}</tool>
<assistant>The design review is booked for 2 December at 10:00 in room HQ-4B, and Li and Sam have been invited.</assistant>""",
    "Heatly": """<system>You control Heatly thermostats. Temperatures must be between 5 and 30 degrees Celsius; a day holds at most six blocks; saving replaces the previous schedule.</system>
<user>Make my living room warm on weekday mornings, 21 degrees from 6:30. Home H-77.</user>
<assistant><func>{"name": "list_thermostats", "arguments": {"home_id": "H-77"}}</func></assistant>
<tool>{"thermostats": [{"thermostat_id": "T-31", "room": "living room"}, {"thermostat_id": "T-32", "room": "bedroom"}]}</tool>
<assistant><func>{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"</func></assistant>
<tool>{"days": {"mon": [{"start": "07:00", "celsius": 19}]}}</tool>
<assistant>Done.</assistant>""",
    "Finbank": """<system>You are a Finbank assistant.</system>
<user>Send 250 EUR to my sister.</user>
<assistant><func>{name: send_transfer, amount: 250</func></assistant>
<tool>{}</tool>""",
}

HEATLY_FIXED = (
    GENERATION["Heatly"]
    .replace(
        '{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"</func>',
        '{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"}}</func>',
    )
    .replace(
        "<assistant>Done.</assistant>",
        """<assistant>Your living room thermostat (T-31) now starts at 7:00 with 19 degrees on Mondays only. Shall I replace the weekday schedule with 21 degrees from 6:30, Monday to Friday?</assistant>
<user>Yes.</user>
<assistant><func>{"name": "set_schedule", "arguments": {"thermostat_id": "T-31", "days": ["mon", "tue", "wed", "thu", "fri"], "blocks": [{"start": "06:30", "celsius": 21}]}}</func></assistant>
<tool>{"thermostat_id": "T-31", "saved": true}</tool>
<assistant>Saved: 21 degrees from 6:30 on weekdays in the living room.</assistant>""",
    )
)

REFINEMENT = {
    "Northwind": """<toolsets>[
{"name": "login", "description": "Sign in to a Northwind account.", "inputSchema": {"type": "object", "properties": {"email": {"type": "string"}, "password": {"type": "string"}}, "required": ["email", "password"]}},
{"name": "list_orders", "description": "List the customer's orders, newest first.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string"}, "delivered_after": {"type": "string", "description": "YYYY-MM-DD"}}, "required": ["session_token"]}},
{"name": "get_order", "description": "Read one order.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string"}, "order_id": {"type": "string"}}, "required": ["session_token", "order_id"]}},
{"name": "create_return", "description": "Start a return for items of one order.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string"}, "order_id": {"type": "string"}, "items": {"type": "array", "items": {"type": "object", "properties": {"item_id": {"type": "string"}, "reason": {"type": "string", "enum": ["damaged", "wrong_size", "changed_my_mind"]}}, "required": ["item_id", "reason"]}}, "refund_method": {"type": "string", "enum": ["original_card", "store_credit"]}}, "required": ["session_token", "order_id", "items", "refund_method"]}},
{"name": "get_return_label", "description": "Prepaid label of a return.", "inputSchema": {"type": "object", "properties": {"session_token": {"type": "string"}, "return_id": {"type": "string"}}, "required": ["session_token", "return_id"]}},
{"name": "find_post_office", "description": "Partner post offices near a postcode.", "inputSchema": {"type": "object", "properties": {"postcode": {"type": "string"}}, "required": ["postcode"]}}
]</toolsets>
<system>You are the Northwind Store returns assistant.
Database schema: customers(customer_id, email, postcode); orders(order_id, customer_id, delivered_on); items(item_id, order_id, name, price, final_sale); returns(return_id, order_id, items, refund_method, status).
Rules: sign the customer in before reading orders. Only items of orders delivered in the last 30 days (today is 2026-11-21) can be returned. Final-sale items and gift cards cannot be returned. Refunds: original card (5-7 business days) or store credit (immediate). Confirm items, reasons and refund method before creating a return. Labels are valid 14 days.</system>
<user>Hello. I'm Maria Lopez, maria.lopez@example.com, password Trail2026!. I want to return the boots from my November order because they're too small, and the rain jacket from my September order since I never wore it. Whatever is quickest for the money.</user>
<assistant><func>{"name": "login", "arguments": {"email": "maria.lopez@example.com", "password": "Trail2026!"}}</func></assistant>
<tool>{"session_token": "tok_5521", "customer_id": "C-3307", "postcode": "28014"}</tool>
<assistant><func>{"name": "list_orders", "arguments": {"session_token": "tok_5521"}}</func></assistant>
<tool>{"orders": [{"order_id": "NW-20931", "delivered_on": "2026-11-14"}, {"order_id": "NW-19877", "delivered_on": "2026-09-02"}]}</tool>
<assistant><func>{"name": "get_order", "arguments": {"session_token": "tok_5521", "order_id": "NW-20931"}}</func></assistant>
<tool>{"order_id": "NW-20931", "delivered_on": "2026-11-14", "items": [{"item_id": "IT-551", "name": "Ridge hiking boots, size 39", "price": 89.9, "final_sale": false}]}</tool>
<assistant>The boots (IT-551, order NW-20931, delivered 14 November) can be returned. The rain jacket's order NW-19877 was delivered on 2 September, more than 30 days ago, so it can no longer be returned. Since you want the quickest refund, store credit is immediate, while a card refund takes 5-7 business days. Shall I return the boots for being too small, refunded as store credit?</assistant>
<user>Fine, store credit. Where can I drop it off?</user>
<assistant><func>{"name": "create_return", "arguments": {"session_token": "tok_5521", "order_id": "NW-20931", "items": [{"item_id": "IT-551", "reason": "wrong_size"}], "refund_method": "store_credit"}}</func></assistant>
<tool>{"return_id": "RT-7710", "status": "created", "store_credit": 89.9}</tool>
<assistant><func>{"name": "find_post_office", "arguments": {"postcode": "28014"}}</func></assistant>
<tool>{"offices": [{"name": "Correos Prado", "address": "Paseo del Prado 10"}]}</tool>
<assistant><func>{"name": "get_return_label", "arguments": {"session_token": "tok_5521", "return_id": "RT-7710"}}</func></assistant>
<tool>{"return_id": "RT-7710", "label_url": "https://northwind.example/labels/RT-7710.pdf", "valid_until": "2026-12-05"}</tool>
<assistant>Return RT-7710 is created and 89.90 of store credit is on your account now. Print the label (valid until 5 December) and drop the parcel at Correos Prado, Paseo del Prado 10.</assistant>""",
    "Teamdesk": """<toolsets>[
{"name": "find_free_slots", "description": "Common free slots.", "parameters": {"type": "object", "properties": {"attendees": {"type": "array", "items": {"type": "string"}}, "duration_minutes": {"type": "integer"}, "date": {"type": "string"}}, "required": ["attendees", "duration_minutes", "date"]}},
{"name": "book_room", "description": "Hold a room, at most 4 hours.", "parameters": {"type": "object", "properties": {"building": {"type": "string"}, "capacity": {"type": "integer"}, "start": {"type": "string"}, "duration_minutes": {"type": "integer", "maximum": 240}}, "required": ["building", "capacity", "start", "duration_minutes"]}},
{"name": "create_event", "description": "Create the event and invite attendees.", "parameters": {"type": "object", "properties": {"title": {"type": "string"}, "attendees": {"type": "array", "items": {"type": "string"}}, "start": {"type": "string"}, "duration_minutes": {"type": "integer"}, "room_id": {"type": "string"}}, "required": ["title", "attendees", "start", "duration_minutes"]}}
]</toolsets>
<system>You are a Teamdesk Calendar assistant. Schema: rooms(room_id, building, capacity); events(event_id, title, start, duration_minutes, room_id). Meetings only between 8:00 and 18:00 for every attendee; rooms held at most 4 hours.</system>
<user>Book a five-hour workshop for li.wei@teamdesk.io and me (ana.ruiz@teamdesk.io) on 2 December in HQ.</user>
<assistant>A room can be held for at most 4 hours, so a five-hour workshop needs two bookings or a shorter session. Would 4 hours work?</assistant>
<user>OK, 4 hours.</user>
<assistant><func>{"name": "find_free_slots", "arguments": {"attendees": ["li.wei@teamdesk.io", "ana.ruiz@teamdesk.io"], "duration_minutes": 240, "date": "2026-12-02"}}</func></assistant>
<tool>{"slots": ["2026-12-02T09:00"]}</tool>
<assistant><func>{"name": "book_room", "arguments": {"building": "HQ", "capacity": 2, "start": "2026-12-02T09:00", "duration_minutes": 240}}</func></assistant>
<tool>{"room_id": "HQ-2A", "held_until": "2026-12-02T13:00"}</tool>
<assistant><func>{"name": "create_event", "arguments": {"title": "Workshop", "attendees": ["li.wei@teamdesk.io", "ana.ruiz@teamdesk.io"], "start": "2026-12-02T09:00", "duration_minutes": 240, "room_id": "HQ-2A"}}</func></assistant>
<tool>{"event_id": "EV-9001", "invitations_sent": 2}</tool>
<assistant>Booked: the workshop runs 9:00-13:00 on 2 December in HQ-2A, and both of you are invited.</assistant>""",
    "Heatly": """<toolsets>[
{"name": "list_thermostats", "description": "Thermostats of a home.", "inputSchema": {"type": "object", "properties": {"home_id": {"type": "string"}}, "required": ["home_id"]}},
{"name": "get_schedule", "description": "Current schedule.", "inputSchema": {"type": "object", "properties": {"thermostat_id": {"type": "string"}}, "required": ["thermostat_id"]}},
{"name": "set_schedule", "description": "Replace the schedule for given days.", "inputSchema": {"type": "object", "properties": {"thermostat_id": {"type": "string"}, "days": {"type": "array", "items": {"type": "string"}}, "blocks": {"type": "array", "items": {"type": "object"}}}, "required": ["thermostat_id", "days", "blocks"]}}
]</toolsets>
<system>You control Heatly thermostats. Schema: thermostats(thermostat_id, home_id, room); schedules(thermostat_id, day, blocks). 5-30 degrees; six blocks a day at most.</system>
<user>Warm the living room to 21 from 6:30 on weekdays, home H-77.</user>
<assistant><func>{"name": "list_thermostats", "arguments": {"home_id": "H-77"}}</func> <func>{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"}}</func></assistant>
<tool>{"thermostats": [{"thermostat_id": "T-31", "room": "living room"}]}</tool>
<tool>{"days": {}}</tool>
<assistant>Done.</assistant>""",
}

HEATLY_REFINED_FIXED = REFINEMENT["Heatly"].replace(
    """<assistant><func>{"name": "list_thermostats", "arguments": {"home_id": "H-77"}}</func> <func>{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"}}</func></assistant>
<tool>{"thermostats": [{"thermostat_id": "T-31", "room": "living room"}]}</tool>
<tool>{"days": {}}</tool>
<assistant>Done.</assistant>""",
    """<assistant><func>{"name": "list_thermostats", "arguments": {"home_id": "H-77"}}</func></assistant>
<tool>{"thermostats": [{"thermostat_id": "T-31", "room": "living room"}]}</tool>
<assistant><func>{"name": "get_schedule", "arguments": {"thermostat_id": "T-31"}}</func></assistant>
<tool>{"days": {}}</tool>
<assistant>The living room thermostat T-31 has no schedule yet. Shall I set 21 degrees from 6:30 on Mondays first?</assistant>
<user>Yes.</user>
<assistant><func>{"name": "set_schedule", "arguments": {"thermostat_id": "T-13", "days": ["mon"], "blocks": [{"start": "06:30", "celsius": 21}]}}</func></assistant>
<tool>{"saved": true}</tool>
<assistant>Saved.</assistant>""",
)

JUDGE = {
    "Northwind": '{"R1": 1, "R2": 1, "R3": 1}',
    "Teamdesk": '```json\n{"R1": 1, "R2": 0, "R3": 1, "reasons": {"R2": "it booked a room without '
    'asking which of the free slots the user wanted"}}\n```',
}

JUDGE_TURNS = {  # the booking made without asking (6); the thermostat ID changed (8)
    "Northwind": '{"R1": 1, "R2": 1, "R3": 1}',
    "Heatly": '{"R1": 0, "R2": 1, "R3": 1, "reasons": {"R1": "T-13 is not the thermostat listed"}, '
    '"turns": {"R1": [8]}}',
    "Teamdesk": '{"R1": 1, "R2": 0, "R3": 1, "reasons": {"R2": "it booked a room without asking '
    'which of the free slots the user wanted"}, "turns": {"R2": [6]}}',
}

STAGES = {
    "Turn the following text into multi-turn tool-use trajectories": "synthesize",
    "You are auditing each turn of a conversation": "judge_turns",
    "You are auditing a conversation": "judge",
    "You are screening text": "relevance",
    "The text below describes how to do something": "extraction",
    "Write one complete, realistic conversation": "generation",
    "Rewrite the conversation below": "refinement",
}


def _stage(prompt: str) -> str:
    for opening, stage in STAGES.items():
        if prompt.startswith(opening):
            return stage
    raise AssertionError(f"unknown prompt: {prompt[:80]!r}")


def _doc(prompt: str) -> str:
    for key in RELEVANCE:
        if key in prompt:
            return key
    raise AssertionError(f"no known example text in prompt: {prompt[:200]!r}")


def teacher_reply(body: dict[str, Any], n: int) -> Reply:
    """The teacher's reply to one request (repairs are answered too)."""
    messages = body["messages"]
    prompt = messages[0]["content"]
    stage, doc = _stage(prompt), _doc(prompt)
    repair = len(messages) > 1
    if stage == "relevance":
        return Reply(RELEVANCE[doc])
    if stage == "extraction":
        return Reply(EXTRACTION[doc])
    if stage == "generation":
        if doc == "Heatly" and repair:
            return Reply(HEATLY_FIXED)
        return Reply(GENERATION[doc])
    if stage == "judge":
        return Reply(JUDGE[doc])
    if stage == "judge_turns":
        return Reply(JUDGE_TURNS[doc])
    if stage == "synthesize":  # a well-trained synthesizer answers like the refiner
        return Reply(REFINEMENT[doc])
    if doc == "Heatly" and repair:
        return Reply(HEATLY_REFINED_FIXED)
    return Reply(REFINEMENT[doc])


def canned_reply(body: dict[str, Any], n: int) -> Reply:
    """The Northwind answers for any document: a teacher for benchmarks of any size."""
    messages = body["messages"]
    stage = _stage(messages[0]["content"])
    replies = {
        "relevance": RELEVANCE,
        "extraction": EXTRACTION,
        "generation": GENERATION,
        "refinement": REFINEMENT,
        "judge": JUDGE,
        "judge_turns": JUDGE_TURNS,
        "synthesize": REFINEMENT,
    }[stage]
    return Reply(replies["Northwind"])


THOUGHT = (
    "The text is about {doc}. I will plan the answer: open with <system>, let the <user> ask, "
    'then an <assistant> turn with <func>{{"name": ...}}</func> and a <tool> reply. '
    "Careful: <user> messages must stay grounded.\n</toolsets> goes first when refining."
)


def reasoning_teacher(body: dict[str, Any], n: int) -> Reply:
    """:func:`teacher_reply`'s answers, each after reasoning in one of the forms real models use.

    The form rotates with the request number: a ``reasoning_content`` field
    (vLLM with a reasoning parser, DeepSeek), a ``reasoning`` field (newer vLLM),
    a leading ``<think>`` or ``<thinking>`` block, and Qwen3 served without a
    reasoning parser (the opening ``<think>`` was in the prompt: reasoning,
    ``</think>``, answer). The reasoning mentions the format's own tags.
    """
    clean = teacher_reply(body, n)
    thought = THOUGHT.format(doc=_doc(body["messages"][0]["content"]))
    tokens = clean.completion_tokens + 40
    form = n % 5
    if form == 0:
        return replace(
            clean, reasoning_content=thought, completion_tokens=tokens, reasoning_tokens=40
        )
    if form == 1:
        return replace(clean, reasoning=thought, completion_tokens=tokens)
    if form == 2:
        return replace(clean, content=f"<think>\n{thought}\n</think>\n\n{clean.content}")
    if form == 3:
        return replace(clean, content=f"<thinking>{thought}</thinking>\n{clean.content}")
    return replace(clean, content=f"{thought}\n</think>\n\n{clean.content}")
