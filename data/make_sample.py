#!/usr/bin/env python3
"""Write a Law-StackExchange-shaped sample corpus (exact source schema) with planted duplicates.

    python data/make_sample.py --questions 1200 --seed 0 --out data/sample/law-stackexchange-questions-answers.json

Writes a JSON array (question_id, tags, score, license, link, question_title, question_body (HTML), answers
[{answer_id, body (HTML), score}]) and a ground-truth file of planted duplicates (default
`<out stem>-duplicates.jsonl`), one line per planted copy:
    {"question_id": <copy id>, "duplicates": <original question_id>, "kind": "exact" | "near" | "paraphrase"}

All text is templated and written for this project (never real Law.SE posts). The output is byte-identical
for a given (--questions, --seed), whatever --workers is: the corpus is built from independently seeded
chunks of 4,096 questions (generated in parallel, written in order). Both files are written to temp files
and renamed into place. Question ids are 6-digit (up to ~300k questions) and ascending; answer ids are 7-digit.

Planted copies (about 3% of rows of each kind) are made only of originals that pass the pipeline's default
filters (has an answer; question and best answer 55-470 words of plain text, inside 50-500 with margin;
question score and best answer score >= 0), and the copies pass them too. A copy always has a larger
question_id than its original (same digit count, in the same chunk), the same answer scores, and a question
score <= the original's, so the survivor rule (higher answer_score, then higher question_score, then smaller
id) keeps the original. An original is copied at most once and copies are never copied.
  exact       identical title, question and answers; new question_id/link/answer_ids; HTML differs only in
              whitespace between blocks.
  near        2-4.5% of the words of question + best answer edited (typos, inserted/deleted/swapped words,
              in small clusters); 5-word-shingle Jaccard of title+question+best answer >= 0.85.
  paraphrase  every sentence re-rendered with different synonymous wording (choice groups re-picked) and some
              sentences reordered; same facts; 5-word-shingle Jaccard < 0.5.

Template mini-language: {slot} is a per-document fact (kept in a paraphrase); [a|b|c] is a choice group of
near-synonymous alternatives (re-picked in a paraphrase; alternatives may hold {slots}, not nested [ ]).
"""
from __future__ import annotations

import argparse
import calendar
import math
import os
import random
import re
import sys
import tempfile
import time

import orjson

# ==========================================================================================================
# Text (templates and slot pools)
# ==========================================================================================================

FIRST_NAMES = [
    "Maria", "José", "Chen", "Aisha", "Tom", "Priya", "Lukas", "Zoë", "François", "Olu", "Sven", "Hannah",
    "Mateo", "Yuki", "Fatima", "Kofi", "Ingrid", "Raj", "Élodie", "Björn", "Niamh", "Dmitri", "Amara",
    "Carlos", "Mei", "Tariq", "Sofia", "Jonas", "Leila", "Ahmed", "Grace", "Pedro", "Anja", "Kwame",
    "Isabel", "Hiroshi", "Noor", "Liam", "Chloé", "Mustafa", "Greta", "Ravi", "Oksana", "Declan", "Ana",
    "Emeka", "Freya", "Joaquín", "Marta", "Viktor", "Rosa", "Tobias", "Imani", "Pavel", "Siobhan", "Kenji",
]
SURNAMES = [
    "Okafor", "Müller", "Nguyen", "Hernández", "Kowalski", "Haddad", "O'Brien", "Lindqvist", "Rossi", "Patel",
    "Dubois", "Tanaka", "Van Dijk", "García", "Novak", "Andersen", "Mensah", "Fitzgerald", "Ivanova", "Costa",
]
COMPANY_WORDS = [
    "Brightwater", "Northgate", "Bluepeak", "Redfern", "Oakline", "Silverbirch", "Harbourview", "Kestrel",
    "Ironbridge", "Meadowlark", "Copperfield", "Stonebrook", "Larkspur", "Greyhaven", "Westmoor", "Sunvale",
    "Quillon", "Tidewell", "Ashcombe", "Foxglove", "Marlowe", "Pinecrest", "Ravensworth", "Elmstead",
]
COMPANY_KINDS = [
    "Logistics", "Property Management", "Software", "Holdings", "Retail", "Media", "Consulting", "Motors",
    "Lettings", "Healthcare", "Foods", "Security", "Telecom", "Design Studio", "Builders", "Travel",
]

# (jurisdiction phrase, tag, currency symbol, cities, US-style dates, miles)
JURISDICTIONS = [
    ("California", "california", "$", ["Sacramento", "San Diego", "Fresno", "Oakland"], True, True),
    ("Texas", "texas", "$", ["Austin", "El Paso", "Houston", "Lubbock"], True, True),
    ("New York", "new-york-state", "$", ["Buffalo", "Albany", "Rochester", "Brooklyn"], True, True),
    ("Florida", "florida", "$", ["Tampa", "Orlando", "Tallahassee", "Gainesville"], True, True),
    ("Illinois", "illinois", "$", ["Chicago", "Springfield", "Peoria"], True, True),
    ("Washington State", "washington", "$", ["Seattle", "Spokane", "Tacoma"], True, True),
    ("Ohio", "ohio", "$", ["Columbus", "Dayton", "Toledo"], True, True),
    ("England", "england-and-wales", "£", ["Leeds", "Bristol", "Norwich", "Manchester", "Exeter"], False, True),
    ("Wales", "england-and-wales", "£", ["Cardiff", "Swansea", "Newport"], False, True),
    ("Scotland", "scotland", "£", ["Glasgow", "Aberdeen", "Dundee", "Edinburgh"], False, True),
    ("Ontario", "canada", "$", ["Ottawa", "Hamilton", "Kingston", "Toronto"], False, False),
    ("British Columbia", "canada", "$", ["Victoria", "Kelowna", "Vancouver"], False, False),
    ("Germany", "germany", "€", ["Leipzig", "Cologne", "Hamburg", "Freiburg"], False, False),
    ("France", "france", "€", ["Lyon", "Nantes", "Toulouse", "Lille"], False, False),
    ("the Netherlands", "netherlands", "€", ["Utrecht", "Rotterdam", "Groningen"], False, False),
    ("Ireland", "ireland", "€", ["Cork", "Galway", "Limerick", "Dublin"], False, False),
    ("Spain", "spain", "€", ["Valencia", "Seville", "Bilbao", "Málaga"], False, False),
    ("New South Wales", "australia", "$", ["Sydney", "Newcastle", "Wollongong"], False, False),
    ("Victoria (Australia)", "australia", "$", ["Melbourne", "Geelong", "Ballarat"], False, False),
    ("India", "india", "₹", ["Pune", "Chennai", "Jaipur", "Kochi"], False, False),
    ("Sweden", "sweden", "€", ["Malmö", "Uppsala", "Gothenburg"], False, False),
    ("New Zealand", "new-zealand", "$", ["Wellington", "Auckland", "Dunedin"], False, False),
]

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
RELATIVES = ["wife", "husband", "partner", "girlfriend", "boyfriend", "sister", "brother", "mother", "father",
             "flatmate", "cousin", "best friend", "son", "daughter"]

# ----------------------------------------------------------------------------------------------------------
# Generic pools shared by every topic (rich in slots and choice groups so they never repeat verbatim).

Q_BACKGROUND = [
    "[I live in|I am based in|I'm a resident of] {city}, {jur}, [and have been for|for roughly|for about] {years} years.",
    "[Some background|A bit of context|For context]: I am {age} and [work as|have a job as] a {occupation} in {city}.",
    "My {relative} [suggested|told me|thinks] I should [ask here|post this here|get a second opinion] before [doing anything|I act|making a move].",
    "[This happened|All of this took place|The events happened] in {city}, {jur}, [around|roughly|about] {months} months ago.",
    "I [tried|attempted] to [sort this out|resolve this|settle this] [informally|amicably|without lawyers] [first|at first], but [got nowhere|it went nowhere|nothing came of it].",
    "I am not a native English speaker, so [please excuse|apologies for|forgive] any [odd wording|mistakes|strange phrasing].",
    "[I have|I've got] [copies of|screenshots of|printouts of] [most of|all of|nearly all of] the [emails|messages|correspondence] [from that period|we exchanged|in question].",
    "We are talking about {amount}, which is [a lot of money|significant|not a small sum] [for me|for my household|on my {occupation}'s salary].",
    "[Up to now|So far|Until now] I have [kept everything polite|stayed calm|not raised my voice], but [my patience is running out|I am losing patience|this is getting stressful].",
    "[Their|The] [reply|answer|response] [just|only|simply] [said|read|stated] \"[we will look into it|this is being handled|please be patient]\" and [nothing more|that was it|no more].",
    "[When I asked|After I asked|Once I asked] [for details|why|for a reason], {fullname2} [said|told me|answered] it was \"[company policy|standard practice|just how it works]\".",
    "[My|Our] [fiancée|fiancé] and I [are planning|intend|hope] to [move|relocate] to {city2} [next year|soon|within {months} months], [which|and this] [adds|puts] [pressure|urgency|time pressure] on [all this|the whole thing|everything].",
    "I moved to {city} from {city2} [about|roughly|nearly] {years} years ago for [work|a new job|my studies].",
    "[My {relative} and I|Both my {relative} and I] [are involved|are affected|have been dragged into this], which makes it [more complicated|messier|harder].",
    "[Money is tight|Our budget is limited|I cannot afford much] right now, so [hiring a lawyer|paying for a solicitor|going to an attorney] is [a last resort|not really an option|something I want to avoid].",
    "I [looked online|searched the web|read a few forum threads] [already|beforehand|first], but [the answers contradict each other|every site says something different|nothing matched my situation].",
    "[For what it's worth|If it matters|In case it is relevant], I [have never been|was never] [in trouble|involved in any legal dispute|in court] before.",
    "The [first|initial] [conversation|phone call|meeting] about this was on {weekday} {date}, and [a witness|my {relative}|a colleague] was present.",
]

Q_CLOSING = [
    "[Any|All] [pointers|advice|help] [would be|is] [much appreciated|very welcome|greatly appreciated].",
    "[Thanks|Thank you|Many thanks] in advance[, and sorry for the long post|, and sorry for the wall of text|].",
    "[Is there|Would there be] [a specific|any particular|a relevant] [law|statute|rule] I should [read|look up|cite]?",
    "[I would|I'd] [like to know|be grateful to learn] [where I stand|what my options are|my rights here] before {weekday}.",
    "[If it changes anything|In case it matters|Should it matter], [the amount involved|the sum at stake|the value] is [around|about|roughly] {amount}.",
    "[Please|Kindly] [let me know|tell me] if [more details|further information|extra facts] [would help|are needed|could change the answer].",
    "I [do not want to|would rather not] [escalate|go to court|make things worse] unless [I really have to|there is no alternative|it is necessary].",
    "[What should I do next|What would be the sensible next step|How should I proceed]?",
    "[Sorry if this is a naïve question|Apologies if this sounds naïve|Forgive me if this is naïve]; [I have|I've] [never|not once] [dealt with|handled|faced] [anything like this|such a thing|this kind of thing] [before|until now].",
]

Q_EDIT = [
    "EDIT: [since posting|after writing this|an hour after posting] I [received|got] [another|a further|a second] [letter|email|message] [from them|on this] [dated|sent on] {date}.",
    "UPDATE: [a few commenters|some people] asked [about|for] the [exact amount|precise figure|sum]; it is {amount2} [in total|overall|all in all].",
    "EDIT {n}: I [clarified|corrected|fixed] the [dates|timeline|order of events] above; the [first|original] [notice|letter|contact] came on {date}.",
    "Update: I [spoke to|called|phoned] [a free advice line|the citizens advice service|a legal aid clinic] and they [were not sure|could not say|gave a vague answer].",
]

A_OPEN = [
    "[Short answer|In short|Briefly]: [probably|most likely|very likely] yes, but [it depends on|the details of|much turns on] [a few facts|the exact wording|the paperwork].",
    "[I am not a lawyer|IANAL|Not legal advice], but [the general position|the usual rule|the default rule] in {jur} is [fairly|reasonably|quite] clear.",
    "[There are|You have|I see] [two|a couple of|several] [separate|distinct|different] [issues|questions|problems] [here|in your post|in this situation].",
    "[This is|That is] a [common|frequent|recurring] [situation|problem|question], and the [answer|outcome|result] [depends|turns] [largely|mostly|mainly] on [evidence|what you can prove|your documents].",
    "[Your|The] [instinct|intuition|suspicion] is [right|correct|sound]: what {party} [did|has done] [looks|seems|appears] [questionable|doubtful|hard to justify].",
    "[Let me|I will|I'll] [go through|take|answer] [your points|the questions|each question] [in order|one by one|in turn].",
    "[The phrase|The wording|The term] \"[reasonable|reasonable notice|in due course]\" [is doing|does|carries] [a lot of work|most of the work|the heavy lifting] [here|in your case|in this situation].",
    "[Nothing|No rule] [in|under] the law of {jur} [forces|obliges|requires] you to [accept|agree to|sign] [this|that|what they propose] [straight away|immediately|on the spot].",
]

A_CAVEAT = [
    "[That said|However|Having said that], a [court|judge|tribunal] [will|would] [look at|weigh|consider] [all the circumstances|the whole picture|every relevant fact], so [nothing is guaranteed|there are no certainties|outcomes vary].",
    "[Keep in mind|Bear in mind|Remember] that [limitation periods|deadlines|time limits] [apply|run|exist]; in {jur} [some claims|certain claims|many claims] must be [brought|filed|started] within {years} years.",
    "[If|Where] [the amount|the sum|the value] [is|sits] [below|under] the [small claims|small-claims|lower court] [limit|threshold|ceiling], you [can|could|may] [act|proceed|file] without a lawyer.",
    "[I would|I'd] [keep|preserve|save] [every|all] [email|message|letter] and [write down|note|record] [dates|times|who said what] [now|today|while you still remember].",
    "[A local|A qualified|A licensed] [lawyer|solicitor|attorney] [can|could|would be able to] [read|check|review] the [actual|original|signed] [documents|paperwork|contract], which I [cannot|can't] do from here.",
    "[Facts|Details|Small facts] [you did not mention|not in your post|omitted here] [could|might|may] [change|alter|reverse] [this|the analysis|my conclusion] [completely|entirely|quite a lot].",
    "[Do not|Don't|Never] [ignore|sit on|disregard] [official|formal|court] [letters|papers|notices]; [missing|not meeting] a [deadline|response date|time limit] [can|may|could] [lose you|cost you|forfeit] the [case|claim|argument] by default.",
    "[Free|Low-cost|Subsidised] [advice|help|assistance] [is often|is usually|may be] [available|offered] [through|from|via] [legal aid|a law school clinic|a local advice centre] in {city}.",
]

A_PROCEDURE = [
    "[First|Start by|Begin by] [sending|writing|putting together] a [short|brief|concise] [letter|email|message] [setting out|explaining|summarising] [what happened|the facts|your position] and [what you want|your demand|the remedy you expect].",
    "[Give|Allow|Set] [them|the other side|{party}] a [clear|reasonable|firm] [deadline|time limit|cut-off], [for example|say|e.g.] {days} days, to [respond|reply|answer].",
    "[If|Should] [that fails|they ignore you|there is no reply], [the next step|your next move|what follows] is [usually|normally|typically] a [formal complaint|claim|filing] [with|to|before] the [competent|relevant|appropriate] [body|authority|court].",
    "[Keep|Make] [copies|a copy|duplicates] of [everything|all of it|every document] you [send|post|submit], and [use|prefer|choose] [tracked|recorded|signed-for] [delivery|post|mail].",
    "[Write|Prepare|Put together] a [timeline|chronology|dated list] of [events|what happened|each incident] [starting|beginning] [with|from|on] {date}.",
    "[Ask|Request|Demand] [in writing|by email|formally] [for|that they provide] the [legal basis|specific clause|exact rule] they [rely on|are relying on|invoke].",
    "[Check|Look at|Read] [whether|if] [an ombudsman|a regulator|an industry body] [covers|handles|deals with] [this kind of|such|this type of] [dispute|complaint|issue]; [it is|that is|this is] [free|cheap|low-cost] and [often|usually|generally] [quicker|faster|less stressful].",
]

A_CLOSE = [
    "[Good luck|Best of luck|I hope this helps], and [keep|stay] [calm|polite|professional] in [all|every|any] [correspondence|communication|message].",
    "[In the end|Ultimately|At the end of the day], [your position|your case|the argument you have] [looks|seems|appears] [reasonably|fairly|quite] [strong|solid|good] on [these facts|what you describe|the information given].",
    "[If|When] you [get|receive|obtain] a [reply|response|answer], [feel free to|you can|do] [update|edit] the question and [I will|I'll|we can] [revisit|look again at|reconsider] [this|the answer|it].",
    "[Overall|All in all|On balance], [I would|I'd] [not|never] [pay|sign|agree to] [anything|something|whatever they ask] [until|before] [you have|you've] [seen|checked|reviewed] [the basis|the evidence|the paperwork].",
]

LIST_INTRO = [
    "[My questions are|So my questions|What I want to know]:",
    "[Specifically|In particular|Concretely], I [am wondering|would like to know|want to understand]:",
    "[The points I am unsure about|What confuses me|The open questions] [are|are these]:",
]
A_LIST_INTRO = [
    "[Practical steps|What I would do|Steps to take], [in order|roughly in this order|in sequence]:",
    "[The key factors|The main things a court looks at|Relevant factors] [are|include]:",
    "[Your options|The options you have|Possible routes] [are|include], [roughly|broadly|more or less]:",
]
H2_Q = ["[Background|The situation|What happened]", "[My question|The question|Questions]", "[Timeline|Key dates|Chronology]"]
H2_A = ["[Short answer|Summary|TL;DR]", "[Long answer|Details|Analysis]", "[What to do now|Next steps|Practical steps]",
        "[The law|Relevant law|Legal framework]", "[Caveats|Limitations|A word of caution]"]

OCCUPATIONS = ["nurse", "software developer", "teacher", "electrician", "student", "delivery driver", "accountant",
               "chef", "freelance designer", "pharmacist", "warehouse worker", "bus driver", "lab technician",
               "retail manager", "carpenter", "social worker", "translator", "paramedic", "plumber", "barista",
               "architect", "café owner", "call-centre agent", "sous-chef", "photographer", "dental hygienist", "PhD student", "mechanic"]

# Code/pre blocks: templated; {slots} are filled (no choice groups here).
PRE_BLOCKS = [
    "From: {fullname2} <{email2}>\nTo: {fullname} <{email}>\nDate: {weekday}, {date}\nSubject: Re: {ref}\n\n{email_line}",
    "Payment log ({ref})\n{date}    {amount}    reference {ref}\n{date2}    {amount3}    late fee\nbalance owed: {amount2}",
    "Clause {n}.{n2} - {company} shall not be liable for any loss\nunless notice is given within {days} days (see Schedule {n3}).",
    "if (customer.age < 18 && !guardian_consent) {{\n    reject(\"{ref}\");\n}}\n// {company} internal rule, rev {n}",
    "Ticket {ref}: status CLOSED -> REOPENED\nassigned to: {fullname2}\nnote: customer disputes amount > {amount}",
]
EMAIL_LINES = [
    "As previously stated, we consider the matter closed and will not discuss it further.",
    "Please note that failure to pay within the stated period will result in further action.",
    "We have reviewed your complaint and regret that we are unable to offer a refund at this time.",
    "Your request has been forwarded to our legal department, who will be in touch in due course.",
    "We reserve all rights and this letter should not be read as an admission of liability.",
]

# ----------------------------------------------------------------------------------------------------------
# Topics. Each: tags, party (how answers refer to the other side), slots (topic-specific pools), titles, facts,
# asks (the actual questions), rules (answer substance), quotes (statute/contract text for blockquotes),
# links ((text, href) for <a>).

TOPICS = [
    dict(
        name="tenancy",
        tags=["tenancy", "landlord", "rental-property", "lease", "security-deposit", "eviction"],
        party="the landlord",
        slots=dict(
            defect=["a leaking roof", "black mould in the bathroom", "a broken boiler", "no hot water",
                    "a rat infestation", "a faulty front door lock", "damp in the bedroom", "a cracked window"],
            deduction=["carpet cleaning", "repainting the walls", "a missing lamp", "garden maintenance",
                       "replacing the blinds", "a professional end-of-tenancy clean", "a scratched worktop"],
            home=["two-bedroom flat", "studio apartment", "terraced house", "basement unit", "shared house",
                  "top-floor apartment", "converted loft", "one-bedroom condo"],
        ),
        titles=[
            "Can my [landlord|property manager|lessor] [keep|withhold|hold back] {amount} of my deposit for {deduction}?",
            "[Is it legal|Is it lawful|Am I allowed] to [withhold rent|stop paying rent] because of {defect}?",
            "[Landlord|Property manager|Lessor] [entered|came into|let himself into] my {home} [without notice|unannounced|without warning] - [what can I do|is that allowed|what are my rights]?",
            "[Does|Would] a {months}-month notice to [quit|leave|vacate] [hold up|stand|count] if my lease [runs|lasts] until {month}?",
            "[Rent increase|Raising the rent|A rent hike] of {pct}% [mid-lease|halfway through a fixed term|during the tenancy] in {jur}",
        ],
        facts=[
            "I [rent|lease|have rented] a {home} in {city} and [moved out|handed back the keys|left] on {date}.",
            "[My|The] [landlord|property manager|lessor] [kept|withheld|held back] {amount} of the deposit, [citing|claiming|blaming] {deduction}.",
            "[For|Over] the past {weeks} weeks there has been {defect}, and [nobody|no one] has [come to fix it|repaired it|dealt with it].",
            "The [tenancy|lease|rental] agreement [says|states|provides] that [rent is|rent must be] [paid|due] on the {n}th of each month.",
            "[On|Last] {weekday} [the landlord|the property manager|the lessor] [let himself in|came in|entered] [while I was at work|while I was out|without knocking] and [left a note|moved my things|took photos].",
            "[Yesterday|This morning|Last week] [I received|I got|there arrived] a [notice|letter|written notice] [telling|asking|ordering] me to [leave|vacate|move out] within {days} days.",
            "[The check-in|The move-in|The initial] inventory [did not mention|said nothing about|never recorded] the [condition|state] of the [carpets|walls|kitchen].",
            "[They now|Now they|The landlord now] [wants|want|is demanding] to [raise|increase|hike] the rent by {pct}% [from|starting|as of] {month}.",
            "I [reported|flagged|complained about] {defect} [in writing|by email|through the tenant portal] on {date} and [again|once more|a second time] {days} days later.",
            "The deposit of {amount2} was [supposed to be|meant to be|required to be] [protected|held|lodged] [in a scheme|with a deposit service|in a separate account].",
        ],
        asks=[
            "[Can|May|Is] [they|the landlord|he] [legally|lawfully] [keep|deduct|withhold] [money|the deposit|part of the deposit] for {deduction}?",
            "[Am I|Would I be] [entitled|allowed|within my rights] to [stop paying|withhold|reduce] rent until {defect} is [fixed|repaired|sorted]?",
            "[How much|What] notice [must|does|should] [a landlord|the landlord|my landlord] [give|provide] before [entering|coming in|an inspection]?",
            "[Is|Would] [the|this] [eviction|notice to quit|notice] [valid|enforceable|lawful] [given|considering|in light of] the [fixed term|lease term|contract]?",
            "[Can|Could] I [claim|recover|get back] [compensation|a penalty|damages] [because|since|given that] the deposit [was not protected|was never lodged|was not registered]?",
        ],
        rules=[
            "[A landlord|The landlord|Your landlord] [may only|can only|is only allowed to] [deduct|withhold|keep] [money|amounts|sums] for [damage|loss|actual damage] [beyond|exceeding|over and above] [normal|ordinary|fair] wear and tear.",
            "[The burden|The onus|The obligation] [is on|lies with|falls on] {party} to [prove|show|demonstrate] the [condition|state] of the {home} [at the start|at check-in|when you moved in].",
            "[Without|Absent|Lacking] a [signed|dated|proper] [check-in inventory|move-in report|inventory], [it is hard|it is difficult|it is very hard] for [them|the landlord|{party}] to [justify|prove|support] [deductions|the deduction|any deduction] for {deduction}.",
            "[Withholding rent|Stopping rent payments|Refusing to pay rent] [is risky|is dangerous|can backfire]: [in many places|in most jurisdictions|often] it [gives|hands|provides] {party} [grounds|a reason|a basis] for [eviction|possession|termination].",
            "[Repairs|Serious repairs|Repairs to the structure] [such as|like|including] {defect} are [normally|usually|generally] the [landlord's|lessor's|owner's] [responsibility|duty|obligation].",
            "[Entry|Access|Entering the property] [without|absent|lacking] [notice|consent|your agreement] [may|can|could] [breach|violate|infringe] your [right to quiet enjoyment|right to quiet possession|tenancy rights].",
            "[A fixed-term|A fixed|A term] [lease|tenancy|contract] [usually|normally|generally] [cannot|can't] be [ended|terminated|cut short] [early|before it expires|mid-term] [unless|except where] [it|the contract] [contains|includes|has] a break clause.",
            "[Rent increases|Increases in rent|Rent rises] [during|within|in] a fixed term [generally|usually|normally] [need|require] [a clause|an express term|a provision] [allowing|permitting] them, [or|or else] your [agreement|consent].",
        ],
        quotes=[
            "The landlord shall keep in repair the structure and exterior of the dwelling-house and keep in repair and proper working order the installations for the supply of water, gas and electricity.",
            "A tenancy deposit must be protected in an authorised scheme within {days} days of receipt, and the prescribed information must be given to the tenant.",
            "The Tenant shall allow the Landlord access to the Property at reasonable times of the day, on giving not less than 24 hours' notice in writing, except in an emergency.",
        ],
        links=[("the deposit protection rules", "https://www.gov.example/tenancy-deposit-protection"),
               ("the tenant's guide", "https://www.housing.example.org/renting/guide"),
               ("section {n} of the Residential Tenancies Act", "https://legislation.example/rta/section-{n}")],
    ),
    dict(
        name="employment",
        tags=["employment", "labor-law", "wages", "termination", "contract-law", "discrimination"],
        party="your employer",
        slots=dict(
            job=["warehouse operative", "junior developer", "care assistant", "sales associate", "line cook",
                 "customer service agent", "graphic designer", "forklift driver", "receptionist", "data analyst"],
            perk=["unpaid overtime", "the annual bonus", "holiday pay", "my final paycheck", "commission",
                  "travel expenses", "the notice period pay", "sick pay"],
            reason=["being late twice", "a customer complaint", "posting on social media", "refusing weekend shifts",
                    "asking about the pay rise", "taking sick leave", "a restructuring"],
        ),
        titles=[
            "[Can|May] my employer [refuse to pay|withhold|deny me] {perk} after I [resigned|handed in my notice|quit]?",
            "[Fired|Dismissed|Let go] for {reason} after {months} months as a {job} - [is that legal|was that lawful|do I have a claim]?",
            "[Is|Would] a non-compete [clause|agreement|restriction] of {years} years [enforceable|valid|binding] in {jur}?",
            "[Employer|My manager|My boss] [wants|expects|is asking] me to [work|do] {n} extra hours a week [without pay|for free|unpaid]",
            "[Do I have to|Must I|Am I required to] [repay|pay back|return] [training costs|a training bond|a signing bonus] of {amount} [if I leave|after quitting|when resigning]?",
        ],
        facts=[
            "I [have worked|worked|have been employed] as a {job} at {company} [for|for about|for nearly] {months} months.",
            "[Last|On] {weekday} my [manager|supervisor|team lead] [called me in|pulled me aside|asked to see me] and [dismissed me|fired me|let me go], [citing|over|because of] {reason}.",
            "[My|The] [contract|employment contract|offer letter] [mentions|refers to|includes] {perk}, [but|yet|however] [it was never paid|nothing arrived|I have not received it].",
            "[Over|During] the last {weeks} weeks I [regularly worked|routinely did|was asked to do] {n} hours [beyond|on top of|over] my contracted [hours|week|schedule].",
            "[When I joined|At the start|On my first day] I [signed|was given|agreed to] a [document|form|clause] [saying|stating|providing] I would [repay|reimburse|pay back] {amount} [if I left|on leaving|on resignation] within {years} years.",
            "[There was|I got|We had] [no|not a single|not one] [written warning|formal warning|disciplinary meeting] [before|prior to|ahead of] [the dismissal|being fired|my termination].",
            "[My|The] [payslip|pay statement|wage slip] for {month} [showed|listed|came to] {amount} [less|lower|short] [than|compared to] [usual|normal|what I expected].",
            "[A colleague|Another employee|A coworker] [doing|in|with] the same [role|job|position] [is paid|earns|gets] {pct}% more [than me|for identical work|despite less experience].",
            "[The HR department|HR|Human resources] [told me|said|claimed] that {perk} [is discretionary|is at their discretion|was never guaranteed].",
        ],
        asks=[
            "[Can|Is] [they|my employer|the company] [legally|lawfully] [refuse|decline|withhold] {perk}?",
            "[Was|Is] [the|my] [dismissal|firing|termination] [unfair|wrongful|unlawful] [given|considering|in view of] [the lack of warnings|no prior warnings|the missing process]?",
            "[Do I have|Have I got|Is there] a [claim|case|valid complaint] [for|about|regarding] [unpaid|missing|withheld] wages?",
            "[Will|Would|Could] a [court|tribunal|judge] [enforce|uphold|accept] the [repayment|clawback|training bond] clause?",
            "[Who|Which body|Where] [should|do|can] I [complain to|report this to|file with] [about|regarding|over] [the pay|the overtime|this]?",
        ],
        rules=[
            "[Wages|Pay|Salary] [already|that have been] earned [cannot|may not|can't] [normally|usually|generally] be [withheld|held back|deducted] [without|absent|lacking] [a legal basis|written consent|a contractual right].",
            "[Whether|If] [the|a] dismissal [is|was] [fair|lawful|valid] [depends|turns] [on|upon] [the reason|the stated reason|why it happened] and [the procedure|how it was done|the process followed].",
            "[Length|Duration] of [service|employment] [matters|is important|counts]: [some|certain|many] [protections|rights|claims] [only|just] [apply|kick in|start] after a [qualifying|minimum|set] period.",
            "[Non-compete|Restrictive covenant|Non-competition] [clauses|terms|restrictions] [are|get] [read|interpreted|construed] [narrowly|strictly|restrictively] and [must|need to|have to] [protect|guard] a [legitimate|genuine|real] business interest.",
            "[Repayment|Clawback|Training bond] clauses [are|tend to be] [enforceable|valid|upheld] [only|just] [if|when|where] the [amount|sum|figure] [is|reflects] a [genuine|reasonable|fair] [cost|estimate|pre-estimate] and [tapers|reduces|decreases] [over time|with service|each month].",
            "[Overtime|Extra hours|Additional hours] [must|have to|need to] [usually|normally|generally] be [paid|compensated|remunerated] [unless|except where] your [contract|salary|pay] [lawfully|validly|properly] [covers|includes|absorbs] them.",
            "[Equal pay|Pay equality|Equal-pay] [rules|law|legislation] [only|just] [help|apply] [if|when|where] the [difference|gap|disparity] [is linked to|relates to|stems from] a protected characteristic.",
            "[A|The] [labour|labor|employment] [inspectorate|board|standards office] [can|may|will often] [investigate|look into|pursue] unpaid [wages|pay|overtime] [for free|at no cost|without a fee].",
        ],
        quotes=[
            "An employer shall not make a deduction from wages of a worker employed by him unless the deduction is required or authorised by statute or a relevant provision of the worker's contract.",
            "Either party may terminate this Agreement by giving {weeks} weeks' written notice. The Company may pay salary in lieu of notice at its sole discretion.",
            "Employees who work in excess of {n} hours in any workweek shall be compensated at a rate not less than one and one-half times the regular rate of pay.",
        ],
        links=[("the labour standards guide", "https://labour.example.gov/standards/overtime"),
               ("the wage deduction rules", "https://www.gov.example/deductions-from-wages"),
               ("this factsheet on dismissal", "https://employment.example.org/factsheets/dismissal-{n}")],
    ),
    dict(
        name="copyright",
        tags=["copyright", "intellectual-property", "fair-use", "licensing", "dmca", "creative-commons"],
        party="the rights holder",
        slots=dict(
            work=["a photograph I took of a lighthouse", "a short story I wrote", "a song I recorded",
                  "a set of icons I designed", "a tutorial video", "a knitting pattern", "a map I drew",
                  "my thesis diagrams", "a 3D model of a chess set", "a recipe blog post"],
            platform=["YouTube", "a small blog", "Instagram", "a podcast", "Etsy", "a GitHub repository",
                      "a community newsletter", "a Discord server", "a print-on-demand shop"],
            use=["a parody", "a review", "a school presentation", "a fan translation", "a remix",
                 "a commercial T-shirt", "an online course", "a museum leaflet"],
        ),
        titles=[
            "[Someone|A company|A stranger] [used|copied|reposted] {work} on {platform} [without permission|without asking|without credit] - [what can I do|what are my options|can I sue]?",
            "[Is|Would] [using|including] [a clip|an excerpt|a few seconds] of a film in {use} [count as|qualify as|be] fair use?",
            "[Can I|May I|Am I allowed to] [sell|distribute|publish] {use} [based on|built from|derived from] [public domain|out-of-copyright|old] material?",
            "[DMCA|Takedown|Copyright] notice [received|filed against me|issued] for {work} I [created myself|made|own] - [how to respond|what now|is it valid]?",
            "[Does|Do] [a|the] Creative Commons [licence|license] [allow|permit|let me] [commercial use|selling|profit] of {work}?",
        ],
        facts=[
            "[Back in|In|During] {month} I [published|uploaded|posted] {work} on {platform}.",
            "[Last week|Recently|A few days ago] I [found|discovered|noticed] that {company} [is using|has used|had copied] it in [an advert|a brochure|their website banner] [without|with no] [credit|attribution|permission].",
            "[I want|I am planning|My plan is] to [make|produce|create] {use} [using|that uses|incorporating] [about|roughly|some] {n} [seconds|minutes|pages] of [someone else's|another creator's|third-party] material.",
            "[The|My] [original|raw|source] [files|drafts|versions] [are dated|carry timestamps from|have metadata from] {date}, [well|long|clearly] before [their|the other] [version|copy|post] [appeared|went up|was published].",
            "{platform} [removed|took down|disabled] my [upload|post|content] after a [complaint|claim|takedown notice] [from|by|filed by] {company}.",
            "The [licence|license|terms] [on the site|attached|shown] [says|reads|states] [attribution required|non-commercial only|share-alike], [but|and] [nothing else|no more detail|that is all].",
            "[I emailed|I wrote to|I contacted] {company} on {date} [asking|requesting|demanding] [either|that they] [credit|pay|a licence fee of] {amount} [or remove it|or take it down|or stop using it].",
            "[Around|About|Roughly] {pct}% of {use} would [consist of|be|come from] [quoted|borrowed|reused] material, [with|plus|alongside] [my own|original|new] commentary.",
        ],
        asks=[
            "[Do I|Would I|Could I] [have|hold|own] [a valid claim|a case|grounds] [for|of] [infringement|copyright infringement|unauthorised copying]?",
            "[Would|Does|Will] {use} [likely|probably] [be|count as|qualify as] [fair use|fair dealing|a permitted exception]?",
            "[How|What is the best way|What should I do] to [respond to|counter|contest] the [takedown|claim|notice]?",
            "[Is|Would] [registering|registration of] the [copyright|work] [needed|necessary|required] [before|prior to|in order to] [suing|filing a claim|taking action]?",
            "[What|How much] [damages|compensation|money] [could|might|would] I [realistically|reasonably|plausibly] [claim|recover|get]?",
        ],
        rules=[
            "[Copyright|Copyright protection|The right] [arises|exists|comes into being] [automatically|on creation|as soon as the work is fixed], [so|which means|meaning] {work} [was|is] protected [from the start|from day one|without registration].",
            "[Fair use|Fair dealing|The exception] is [assessed|decided|weighed] [case by case|on the facts|individually] [using|by looking at|with] [the purpose|the nature|the amount used] and [the market effect|harm to the market|economic impact].",
            "[Transformative|Commentary-based|Critical] [uses|purposes|works] [such as|like|including] {use} [fare|tend to do|do] [better|well|more favourably] [than|compared with|versus] [straight copying|verbatim reuse|simple reposting].",
            "[Using|Taking|Copying] {pct}% of [the|a] work [is|would be] [a lot|substantial|significant]; [courts|judges|tribunals] [look at|consider|weigh] [quality|the importance of the part taken|the heart of the work] as [well|much] as [quantity|amount|length].",
            "[Attribution|Credit|Giving credit] [alone|by itself|on its own] [does not|doesn't|never] [turn|make|convert] an [infringing|unlicensed|unauthorised] use into a [lawful|permitted|legal] one.",
            "[A counter-notice|A counter notification|Counter-notifying] [is|works as] the [standard|normal|usual] [response|remedy|route] [if|when|where] you [own|hold|control] the [rights|copyright|work] [yourself|personally|outright].",
            "[In the US|Under US law|In the United States], [statutory damages|pre-set damages|damages without proof of loss] [generally|usually|normally] [require|depend on|need] [timely|prior|early] registration.",
            "[Public domain|Out-of-copyright|Expired] [material|works|content] [may|can] be [used|reused|exploited] [freely|without permission|by anyone], [but|though|although] [new|modern|recent] [editions|translations|arrangements] [may|can|could] [carry|have|attract] their own [copyright|protection|rights].",
        ],
        quotes=[
            "The fair use of a copyrighted work, including such use by reproduction in copies, for purposes such as criticism, comment, news reporting, teaching, scholarship, or research, is not an infringement of copyright.",
            "You are free to share and adapt the material for any purpose, provided that you give appropriate credit, provide a link to the license, and indicate if changes were made.",
            "Fair dealing with a work for the purpose of quotation does not infringe copyright provided that the quotation is accompanied by a sufficient acknowledgement.",
        ],
        links=[("the fair use factors", "https://copyright.example.gov/fair-use/factors"),
               ("the licence deed", "https://licenses.example.org/by/{n}.0/"),
               ("the counter-notice template", "https://www.example.org/counter-notice-{n}")],
    ),
    dict(
        name="contracts",
        tags=["contract-law", "contract", "breach-of-contract", "small-claims", "verbal-contract", "penalty-clause"],
        party="the other party",
        slots=dict(
            deal=["a kitchen renovation", "a wedding photography package", "a used car purchase",
                  "a website build", "a catering job", "a roof repair", "a furniture order", "a tutoring package",
                  "a garden landscaping job", "a bathroom refit"],
            problem=["finished {weeks} weeks late", "left the work half done", "used cheaper materials",
                     "demanded more money midway", "cancelled two days before", "delivered the wrong model"],
        ),
        titles=[
            "[Contractor|Builder|Supplier] [abandoned|walked away from|left unfinished] {deal} after I paid {amount} - [can I get it back|what are my options|how do I recover it]?",
            "[Is|Would] a [verbal|spoken|handshake] agreement for {deal} [binding|enforceable|valid] in {jur}?",
            "[Can|Could] a [cancellation fee|termination charge|penalty] of {pct}% [really|actually|legally] be [enforced|charged|demanded]?",
            "[Signed|Agreed to] {deal} [under pressure|in a rush|without reading] - [can I back out|is there a cooling-off period|can I cancel]?",
            "[Who pays|Who is liable|Who bears the cost] when {deal} [goes wrong|fails|falls through] [because of|due to] [weather|a supplier|a third party]?",
        ],
        facts=[
            "[In|Back in|During] {month} I [agreed|signed up|contracted] with {company} for {deal} [at|for|costing] {amount2}.",
            "I [paid|transferred|handed over] a [deposit|down payment|first instalment] of {amount} [up front|in advance|at the outset].",
            "[The|Their] [contractor|firm|team] [then|subsequently|later] {problem}, [and|but] [refused|declined|would not agree] to [discuss it|compromise|make it right].",
            "[Nothing|None of this|Very little] was [put in writing|written down|signed]; [we agreed|everything was agreed|the deal was made] [over the phone|in person|by text message].",
            "The [terms|small print|contract] [include|contains|has] a [clause|term|provision] [charging|imposing|setting] a {pct}% [fee|penalty|charge] for [cancellation|early termination|withdrawal].",
            "[They|The company|{company}] [sent|issued|posted] an [invoice|final bill|demand] for {amount3} [more|extra|on top], [labelled|described|marked] as [variations|additional work|extras].",
            "[I have|There are|We exchanged] [about|around|some] {n} [text messages|emails|voice notes] [confirming|showing|setting out] the [price|scope|start date].",
            "[A second|Another|An independent] [tradesperson|expert|surveyor] [quoted|estimated|said it would cost] {amount3} to [fix|complete|redo] the [job|work|result].",
        ],
        asks=[
            "[Can I|Could I|Am I able to] [recover|get back|reclaim] the [deposit|money I paid|down payment]?",
            "[Is|Was] [our|the|this] [agreement|deal|arrangement] [legally binding|enforceable|a valid contract] [without|absent|lacking] a [written contract|signature|signed document]?",
            "[Is|Would] [a|the] {pct}% [penalty|fee|charge] [enforceable|valid|upheld]?",
            "[Should I|Do I|Must I] [pay|settle|cover] the [extra|additional|new] invoice for {amount3}?",
            "[What|Which] [court|route|process] [would|should|do] I [use|take|go through] to [claim|recover|sue for] the [money|sum|difference]?",
        ],
        rules=[
            "[A contract|An agreement|A binding contract] [does not|doesn't|need not] [usually|normally|generally] [need|require|have] to be [in writing|written|signed]; [offer|an offer], [acceptance|agreement] and [consideration|something of value] are [enough|sufficient|what counts].",
            "[The problem|The difficulty|The challenge] with [oral|verbal|unwritten] [contracts|agreements|deals] is [proof|evidence|proving the terms], [which|and this|so] [is why|explains why|means] your [messages|texts|emails] [matter|are important|are valuable].",
            "[If|Where|When] {party} [fails|failed|did not manage] to [perform|deliver|do the work] [properly|as agreed|with reasonable care], you [can|may|are entitled to] [claim|recover|seek] the [cost|reasonable cost|price] of [putting it right|fixing it|completion].",
            "[Penalty|Termination|Cancellation] [clauses|fees|charges] [that|which] [bear no relation|are out of proportion|are unrelated] to [real|actual|genuine] [loss|losses|damage] [may|can|could] be [unenforceable|struck out|void].",
            "[Extra|Additional|New] [charges|work|costs] [must|need to|should] [normally|usually|generally] be [agreed|approved|accepted] [before|in advance|up front]; [an unagreed|a surprise|an unilateral] [variation|invoice|charge] [is|can be] [challenged|disputed|resisted].",
            "[Consumers|Buyers|Customers] [who sign|signing|contracting] [at home|off-premises|away from a shop] [often|frequently|commonly] [get|have|enjoy] a [cooling-off|cancellation|withdrawal] period of {days} days.",
            "[You must|You need to|You should] [mitigate|limit|reduce] [your|the] [loss|losses|damage]: [get|obtain|collect] [quotes|estimates|written quotes] and [do not|don't|never] [overspend|inflate the bill|gold-plate] the [fix|repair|completion].",
            "[A letter before action|A formal demand|A final demand letter] [is|remains] [usually|normally|typically] [expected|required|the first step] [before|prior to|ahead of] [a claim|filing|court].",
        ],
        quotes=[
            "If the Customer cancels the Order after acceptance, the Company may retain {pct} per cent of the Price as a reasonable pre-estimate of its losses.",
            "The Contractor shall carry out the Works with reasonable skill and care and in accordance with the Specification, using materials of satisfactory quality.",
            "No variation of this Agreement shall be effective unless it is in writing and signed by or on behalf of each of the parties.",
        ],
        links=[("the small claims guide", "https://courts.example.gov/small-claims-guide"),
               ("the cooling-off rules", "https://consumer.example.org/cooling-off-{n}"),
               ("a template letter before action", "https://www.example.org/templates/letter-before-action")],
    ),
    dict(
        name="traffic",
        tags=["traffic", "speeding", "driving", "parking", "traffic-ticket", "road-traffic-act"],
        party="the authority",
        slots=dict(
            offence=["speeding", "running a red light", "using a phone while driving", "parking on a bus lane",
                     "an expired registration", "driving in a low-emission zone", "failing to stop at a crossing"],
            vehicle=["hatchback", "rented van", "motorbike", "company car", "e-scooter", "camper van", "hybrid estate car"],
        ),
        titles=[
            "[Ticket|Fine|Penalty notice] for {offence} [arrived|came|was sent] {days} days [later|after the event|after the date] - [is it still valid|can I contest it|is it out of time]?",
            "[Caught|Flashed|Clocked] at {speed} in a {limit} zone [by|with] a [mobile|hidden|handheld] camera - [can I challenge|should I fight|is it worth contesting] it?",
            "[Do I have to|Must I|Am I obliged to] [name|identify|disclose] the driver of my {vehicle} [for|after|regarding] {offence}?",
            "[Parking ticket|Parking fine|Parking charge] of {amount} [on|at|in] a private car park [in|near] {city} - [do I have to pay|is it enforceable|can I ignore it]?",
            "[Is|Was] [the sign|the signage|the road marking] for {offence} [adequate|clear enough|legally sufficient]?",
        ],
        facts=[
            "[On|Last] {weekday} {date} I was [driving|riding|travelling] my {vehicle} [through|near|outside] {city} [in the evening|around noon|early in the morning].",
            "[A|The] [notice|letter|ticket] [says|claims|alleges] I was [doing|travelling at|going] {speed} where the limit is {limit}.",
            "The [speed limit|restriction|limit] [sign|signs] [was|were] [hidden|obscured|blocked] [behind|by] [overgrown hedges|a parked lorry|roadworks].",
            "[The|My] [letter|notice|ticket] [only|eventually|finally] [arrived|reached me|turned up] {days} days [after|following|later than] the [alleged|supposed|claimed] [offence|incident|event].",
            "[My|The] {vehicle} is [registered|insured|kept] [to|in the name of|under] my {relative}, [but|and|while] [several people|three of us|we both] [drive|use|share] it.",
            "[The private|The car park|The parking] [operator|company|firm] {company} [demands|wants|is asking for] {amount}, [rising|increasing|going up] to {amount2} [if unpaid|after {days} days|later].",
            "[Dashcam|My dashcam|The dashcam] footage [shows|suggests|appears to show] [the light|the signal|the lights] [turning|changing|going] amber [just as|right when|as] I [crossed|passed|reached] the line.",
            "[This is|It would be|That makes it] my [first|only|second] [offence|penalty|ticket] in {years} years of [driving|holding a licence|motoring].",
        ],
        asks=[
            "[Is|Would] the [notice|ticket|penalty] [still|even] [valid|enforceable|lawful] [given|considering|despite] the [delay|late arrival|time it took]?",
            "[Can|Should|Could] I [contest|challenge|appeal] [the|this] [ticket|fine|penalty] [based on|because of|citing] the [signage|signs|hidden sign]?",
            "[What happens|What are the consequences|What is the risk] if I [do not|don't|refuse to] [name|identify|nominate] the driver?",
            "[Do I|Must I|Should I] [actually|really|legally] [pay|settle|respond to] a private parking [charge|invoice|demand]?",
            "[Will|Would|Could] [this|the offence|a conviction] [add|put|mean] [points|penalty points|demerits] on my licence?",
        ],
        rules=[
            "[In many places|Often|In several jurisdictions] [the|a] [notice|notice of intended prosecution|first notice] [must|has to|needs to] [reach|be served on|be sent to] the [registered keeper|owner|keeper] within {days} days.",
            "[Speed limit|Road|Traffic] [signs|signage|markings] [must|need to|have to] [comply with|follow|meet] [the regulations|prescribed standards|the rules]; [missing|obscured|non-compliant] [signs|signage|markings] [can|may|could] [be a defence|defeat a charge|help an appeal].",
            "[Failing|Refusing|Not managing] to [identify|name|nominate] the driver [is|can be|is often] a [separate|distinct|standalone] offence, [sometimes|often|occasionally] [with|carrying|attracting] [more|heavier|higher] [points|penalties|fines].",
            "[Private|Private-land|Car park] parking [charges|invoices|tickets] are [contractual|a contract claim|civil claims], [not|rather than] [fines|criminal penalties|public fines], so [different|other|separate] [rules|defences|procedures] [apply|govern them|are relevant].",
            "[Camera|Device|Speed-measuring] [evidence|readings|records] [can|may] be [challenged|questioned|attacked] [on|for] [calibration|certification|maintenance], [but|though|although] [such|these] [challenges|defences|arguments] [rarely|seldom|not often] [succeed|work|win].",
            "[Amber|Yellow] light [rules|law|regulations] [vary|differ|change] [by|between] [jurisdiction|country|state]; [in some|in many|in certain] [places|systems|states] [crossing|entering] on amber is [lawful|permitted|allowed] if [stopping|braking] [is unsafe|would be dangerous|is not possible].",
            "[First|First-time|Minor] [offenders|drivers|offences] [may|can|could] be [offered|eligible for|allowed] a [course|driver awareness course|diversion] [instead of|in place of|rather than] [points|penalty points|a conviction].",
        ],
        quotes=[
            "A person shall not be convicted of the offence unless within {days} days of its commission a notice of the intended prosecution was served on him or on the registered keeper.",
            "No person shall drive a motor vehicle on a restricted road at a speed exceeding {limit} unless otherwise indicated by traffic signs.",
            "By parking in this car park you agree to the terms and conditions. Failure to comply will result in a parking charge of {amount}.",
        ],
        links=[("the guidance on traffic signs", "https://roads.example.gov/traffic-signs-manual"),
               ("the appeals service", "https://www.parking-appeals.example.org/"),
               ("the penalty points table", "https://transport.example.gov/penalty-points-{n}")],
    ),
    dict(
        name="privacy",
        tags=["gdpr", "privacy", "data-protection", "subject-access-request", "cctv", "european-union"],
        party="the controller",
        slots=dict(
            data=["my CCTV footage", "my call recordings", "my location history", "my medical file",
                  "my email address", "photos of my children", "my credit score", "my browsing data"],
            org=["a gym chain", "my former employer", "a dating app", "a dentist", "an online shop",
                 "a school", "a debt collector", "a housing association", "an estate agent"],
        ),
        titles=[
            "[Company|Organisation|Business] [ignored|did not answer|refused] my [subject access request|data access request|SAR] after {days} days - [what now|next steps|how to escalate]?",
            "[Can|May|Is] {org} [share|sell|pass on] {data} [to|with] third parties [without|with no] [consent|my permission|asking]?",
            "[Neighbour's|A neighbour's|Next door's] [camera|CCTV|doorbell camera] [films|records|points at] my [garden|driveway|front door] - [is that allowed|is it legal|GDPR issue]?",
            "[Right to erasure|Deletion request|Right to be forgotten]: {org} [says|claims|insists] it [must|has to|needs to] [keep|retain|hold] {data} for {years} years",
            "[Is|Would] [a|the] [cookie banner|consent pop-up|tracking notice] [with|without] a reject button [compliant|lawful|GDPR-compliant]?",
        ],
        facts=[
            "On {date} I [sent|submitted|emailed] a [subject access request|data access request|request for my data] to {org} [asking|requesting] [for|about] {data}.",
            "[It has now been|It is now|We are at] {days} days [and|yet|but] [nothing|no reply|no data] [has arrived|came back|has come].",
            "[I found out|I learned|It turned out] that {org} [had shared|passed|sold] {data} [with|to] [a marketing firm|an advertiser|a partner company] [called|named] {company}.",
            "[My|The] [neighbour|person next door|neighbour across the road] [installed|put up|mounted] a [camera|CCTV camera|doorbell camera] [that|which] [covers|captures|records] [part of|half of|most of] my [garden|driveway|windows].",
            "[Their|The] [privacy policy|privacy notice|data policy] [says|claims|states] [data is kept|they keep data|records are retained] for {years} years [for|due to|because of] [legal reasons|legitimate interests|tax purposes].",
            "[When I|After I|Once I] [asked|requested|insisted] [for deletion|for erasure|to be deleted], [they|the company|{org}] [replied|answered|wrote back] that [it is|this is|that was] [impossible|not possible|not allowed].",
            "The [website|app|portal] [shows|has|uses] a [banner|pop-up|notice] with [only|just] an [Accept|OK|Agree] button and {n} [pre-ticked|pre-selected|enabled] [boxes|options|categories].",
            "[They|{org}|The company] [asked|wanted|required] me to [send|provide|upload] a [copy of my passport|photo ID|utility bill] [before|prior to|ahead of] [handling|processing|answering] the request.",
        ],
        asks=[
            "[Is|Was] {org} [allowed|permitted|entitled] to [ignore|delay|sit on] [the|my] request [this long|for so long|beyond a month]?",
            "[Can|Should|Could] I [complain|report this|escalate] to the [data protection authority|supervisory authority|regulator]?",
            "[Is|Does] [the|their] [retention|storage|keeping] [of|for] {data} [lawful|justified|compliant] [given|considering|under] [GDPR|data protection law|the regulation]?",
            "[Can|Could|Would] I [claim|get|seek] [compensation|damages|money] [for|over|because of] [the|this] [data sharing|breach|misuse]?",
            "[Is|Would] [the|a] [camera|CCTV setup|doorbell camera] [recording|filming|capturing] my [property|garden|house] [a|an] [privacy breach|unlawful intrusion|data protection issue]?",
        ],
        rules=[
            "[A controller|An organisation|The controller] [must|has to|needs to] [respond to|answer|deal with] a [subject access request|SAR|data access request] [without undue delay|promptly|quickly] and [at the latest|in any event|at most] within one month.",
            "[Asking|Requesting|Demanding] [for|about] ID [is|can be] [allowed|fine|legitimate] [only|just] [where|when|if] there is [reasonable|genuine|real] doubt [about|regarding|as to] [your|the requester's] identity.",
            "[Every|Each|Any] [processing|use of data|data use] [needs|requires|must have] a [lawful basis|legal basis|legal ground] [such as|like|e.g.] [consent|contract|legitimate interests].",
            "[Consent|Valid consent|Lawful consent] [must|has to|needs to] be [freely given|voluntary|unforced], [specific|informed|unambiguous]; [pre-ticked|pre-selected|default-on] [boxes|options|checkboxes] [do not|don't|never] [count|qualify|suffice].",
            "[Domestic|Household|Private] CCTV [that|which] [covers|captures|films] [public space|a neighbour's land|beyond the owner's boundary] [falls outside|is not covered by|loses] the [household exemption|domestic exemption|personal-use exception].",
            "[Retention|Storage|Keeping data] [must|has to|should] be [limited|restricted] to [what is necessary|the stated purpose|the minimum]; {years} years [needs|requires|calls for] a [specific|concrete|clear] [justification|reason|legal obligation].",
            "[You can|You may|Anyone can] [complain|lodge a complaint|report] to the [supervisory authority|regulator|data protection authority] [for free|without charge|at no cost], [though|but|although] [they|it] [can be|may be|is often] [slow|backlogged|overloaded].",
            "[Compensation|Damages] [under|for breaches of|pursuant to] GDPR [covers|includes|extends to] [non-material damage|distress|non-financial harm], [but|though|although] [awards|amounts|sums] [tend to be|are often|are usually] [modest|small|low].",
        ],
        quotes=[
            "The controller shall provide information on action taken on a request to the data subject without undue delay and in any event within one month of receipt of the request.",
            "Personal data shall be kept in a form which permits identification of data subjects for no longer than is necessary for the purposes for which the personal data are processed.",
            "Consent should be given by a clear affirmative act. Silence, pre-ticked boxes or inactivity should not therefore constitute consent.",
        ],
        links=[("Article 15 GDPR", "https://gdpr.example.eu/art-15"),
               ("the regulator's complaint form", "https://dpa.example.gov/complaints"),
               ("the guidance on CCTV", "https://dpa.example.gov/guidance/cctv-{n}")],
    ),
    dict(
        name="immigration",
        tags=["immigration", "visa", "residence-permit", "citizenship", "work-permit", "asylum"],
        party="the immigration office",
        slots=dict(
            permit=["student visa", "work permit", "spousal visa", "Blue Card", "working holiday visa",
                    "permanent residence card", "skilled worker visa", "tourist visa"],
            country=["Brazil", "Nigeria", "Vietnam", "Ukraine", "Mexico", "the Philippines", "Egypt",
                     "Colombia", "Pakistan", "Kenya", "Turkey", "Peru"],
        ),
        titles=[
            "[Overstayed|Stayed past|Exceeded] my {permit} by {days} days [because of|due to|after] [a cancelled flight|illness|a paperwork error] - [consequences|what happens now|will I be banned]?",
            "[Can I|May I|Am I allowed to] [work|freelance|take a side job] [on|while holding|with] a {permit} in {jur}?",
            "[Visa|Permit|Application] [refused|rejected|denied] [over|because of|for] [missing|incomplete|wrong] [documents|bank statements|paperwork] - [appeal or reapply|should I appeal|what now]?",
            "[Travelling|Leaving the country|Going abroad] [while|whilst] my {permit} [renewal|extension] is [pending|in progress|being processed]",
            "[Does|Would] [a|my] [minor|old|spent] [conviction|caution|fine] [affect|harm|block] [a|my] [citizenship|naturalisation|residence] application?",
        ],
        facts=[
            "I am a [citizen|national] of {country} and [hold|have|was granted] a {permit} [for|valid in] {jur}.",
            "[My|The] {permit} [expired|ran out|ended] on {date}, [and|but] [I am still|I remained|I stayed] here [because|since|as] {relative_reason}.",
            "[On|In] {month} I [applied|submitted an application|filed] for [an extension|a renewal|a change of status], [paying|with a fee of|costing] {amount}.",
            "[The|My] [application|request|case] was [refused|rejected|turned down] [on|with a letter dated] {date}, [citing|because of|over] [insufficient funds|missing documents|an incomplete form].",
            "[A friend|An acquaintance|A relative] [offered|proposed|suggested] me [part-time|freelance|occasional] work [paying|at|worth] {amount} a month.",
            "[Years ago|When I was {age}|A long time ago] I [received|got|was given] a [fine|caution|conviction] for [a minor offence|shoplifting|a public order matter] in {country}.",
            "[My|The] [employer|sponsor|university] [says|told me|claims] [it|they] [will|can|might] [support|sponsor|back] [the|my] [application|renewal|extension].",
            "[I have|There are|I kept] [bank statements|payslips|records] [covering|for|showing] {months} months, [but|though|although] [one|a single|the last] [month|statement] is [missing|lost|unavailable].",
        ],
        asks=[
            "[Will|Would|Could] [the|an] overstay of {days} days [lead to|result in|cause] a [ban|re-entry ban|refusal] [later|in future|next time]?",
            "[Can|May|Is] I [legally|lawfully|allowed to] [take|accept|do] [the|this] [job|work|freelance work] on my {permit}?",
            "[Should|Would it be better to|Is it wiser to] [appeal|challenge the decision|request a review] or [simply|just|rather] [reapply|submit a new application|apply again]?",
            "[Is it|Would it be|Would it be] [safe|wise|risky] to [travel|leave|fly home] [while|whilst|as long as] the [application|renewal|case] is [pending|open|undecided]?",
            "[Do I have to|Must I|Should I] [declare|disclose|mention] the [old|minor|foreign] [conviction|caution|fine] [on|in] the [form|application|questionnaire]?",
        ],
        rules=[
            "[Short|Brief|Minor] overstays [caused by|due to|resulting from] [circumstances beyond your control|exceptional circumstances|events you could not control] are [often|usually|frequently] [treated|viewed|handled] [leniently|with some leniency|more kindly], [especially|particularly] [with|if you have] [evidence|documents|proof].",
            "[Work rights|The right to work|Permission to work] [depend|turn|rely] [entirely|wholly|completely] on the [conditions|terms|endorsements] [of|attached to|printed on] your {permit}; [working|taking work] [in breach|outside them|without permission] [can|may|could] [lead to|cause|result in] [cancellation|removal|curtailment].",
            "[An appeal|Administrative review|A review] [is|tends to be] [appropriate|the right route|suitable] [where|when|if] the [decision|caseworker|officer] [made an error|got the law wrong|misread the evidence]; [a new application|reapplying|a fresh application] [is|may be] [better|quicker|easier] [if|when|where] [documents|evidence] were [simply|just|actually] missing.",
            "[Leaving|Travelling abroad|Departing] [while|whilst|as] an [application|extension request|in-country application] is [pending|open|undecided] [often|can|may] [counts as|is treated as|amounts to] [withdrawing|abandoning|cancelling] it.",
            "[Forms|Application forms|Questionnaires] [usually|often|typically] [ask|require you|demand] [to declare|for|about] [all|any|every] [convictions|offences|cautions] [worldwide|anywhere|in any country]; [failing|omitting|not declaring] [is|can be|is often] [treated as|considered|seen as] deception.",
            "[Continuous|Unbroken|Uninterrupted] [residence|lawful residence|stay] [matters|counts|is important] for [settlement|permanent residence|citizenship], so [gaps|breaks|interruptions] [can|may|could] [reset|restart|affect] the [clock|qualifying period|count].",
            "[Immigration|Visa|Residence] [rules|law|policy] [change|shift|are updated] [often|frequently|regularly]; [check|consult|read] the [current|latest|official] [guidance|rules|instructions] [on|at|from] the [government|official|ministry] [website|portal|page].",
        ],
        quotes=[
            "The applicant must not have remained in the country in breach of immigration laws for more than {days} days, unless there were exceptional circumstances.",
            "A person who has been granted permission as a student may not work in self-employment or as a professional sportsperson.",
            "An application is treated as withdrawn if the applicant travels outside the common travel area before the application is decided.",
        ],
        links=[("the official visa guidance", "https://immigration.example.gov/visas/guidance-{n}"),
               ("the overstay policy", "https://immigration.example.gov/policy/overstay"),
               ("the rules on working", "https://immigration.example.gov/permission-to-work")],
    ),
    dict(
        name="criminal",
        tags=["criminal-law", "police", "arrest", "search-and-seizure", "criminal-procedure", "self-defense"],
        party="the police",
        slots=dict(
            incident=["a bar fight", "a shoplifting accusation", "a noise complaint", "a traffic stop",
                      "a protest", "a dispute with a neighbour", "a lost wallet I handed in", "a house party"],
            item=["my phone", "my car", "my backpack", "my laptop", "my flat", "my locker", "my shed"],
        ),
        titles=[
            "[Police|Officers|Two officers] [searched|went through|looked in] {item} [without|with no] a warrant [after|during] {incident} - [is evidence admissible|was that legal|what now]?",
            "[Do I have to|Must I|Am I required to] [unlock|give the code to|hand over the password for] {item} [if|when] the police [ask|demand|insist]?",
            "[Invited|Asked|Called in] [to|for] a voluntary [interview|police interview|interview under caution] [about|regarding|over] {incident} - [should I go|do I need a lawyer|what should I expect]?",
            "[Was it|Would it count as|Is it] self-defence [when|if] I [pushed|shoved|restrained] [someone|a man|a stranger] [during|in] {incident}?",
            "[Charged|Accused|Arrested] {years} years [after|following|since] {incident} - [is there a time limit|can they still prosecute|statute of limitations]?",
        ],
        facts=[
            "[On|Late on|Early on] {weekday} {date} I was [involved|caught up|present] in {incident} [in|near|outside a pub in] {city}.",
            "[Two|Several|A pair of] officers [arrived|turned up|came] [after|within] {n} minutes and [asked|demanded|wanted] to [search|see|check] {item}.",
            "[I said|I told them|I made clear] [I did not consent|I did not agree|no] [to|to the|to any] search, [but|yet|and still] they [went ahead|did it anyway|searched it].",
            "[They|The officers|The police] [found|took|seized] [a small amount of cash|a penknife|some paperwork] and [gave|handed|issued] me a [receipt|form|slip] [numbered|with reference] {ref}.",
            "[Now|Recently|This week] I [received|got|was sent] a letter [inviting|asking|requesting] me to [attend|come to|go to] a voluntary interview on {date}.",
            "[The other man|The other person|He] [swung|lunged|came] at me [first|before I did anything|unprovoked], and [I|so I] [pushed|shoved|held] him [away|back|off].",
            "[There is|We have|I know of] [CCTV|phone footage|a video] [from|of|covering] [the street|the entrance|the scene], [as well as|plus|and] {n} [witnesses|bystanders|people who saw it].",
            "[I have|I've got|There is] [no|not a single|no previous] [criminal record|conviction|caution] [and|but] [I am|I'm|being] [worried|anxious|scared] about [my job|my visa|my career as a {occupation}].",
        ],
        asks=[
            "[Was|Is] [the|that] search [lawful|legal|valid] [without|absent|with no] a warrant or my consent?",
            "[If|Where] the search was [unlawful|illegal|invalid], [is|would] the [evidence|material found|item] [still|nevertheless] [admissible|usable|allowed] in court?",
            "[Should I|Do I need to|Is it wise to] [attend|go to|show up for] the [voluntary|police] interview [with|alongside] a [lawyer|solicitor|duty solicitor]?",
            "[Would|Does|Could] [my|the] [push|shove|reaction] [count as|qualify as|be treated as] [reasonable|lawful|legitimate] self-defence?",
            "[Am I|Would I be|Could I be] [required|forced|obliged] to [reveal|give|hand over] [my|the] [passcode|PIN|password]?",
        ],
        rules=[
            "[Police|Officers|The police] [generally|usually|normally] [need|require] a [warrant|judicial warrant|court order], [consent|your consent], or a [recognised|specific|statutory] exception [to|before they can|in order to] search {item}.",
            "[Exceptions|Common exceptions|Recognised exceptions] [include|cover|are] [search incident to arrest|searches upon arrest|post-arrest searches], [exigent circumstances|emergencies|urgent situations] and [items in plain view|plain view|visible evidence].",
            "[Whether|If] [unlawfully obtained|illegally obtained|improperly obtained] evidence is [excluded|thrown out|kept out] [varies|differs|depends] [a lot|greatly|widely] [between|across|from] [jurisdictions|countries|legal systems]; [some|many|several] [courts|systems] [exclude it|keep it out|apply an exclusionary rule] [automatically|as a rule|by default], [others|some|many others] [weigh|balance|consider] [fairness|the public interest|the seriousness].",
            "[Always|You should always|Definitely] [get|take|bring] [legal advice|a lawyer|a solicitor] [before|ahead of|prior to] [any|a] [police interview|interview under caution|voluntary interview]; [it is|this is|advice is] [often|usually|frequently] [free|at no cost] [at the station|for suspects|through a duty scheme].",
            "[Self-defence|Self-defense|Defence of the person] [requires|needs|turns on] an [honest|genuine|real] belief [that|in the need for] force [was needed|was necessary|was required] and [force|a response|a reaction] [that was|which was] [reasonable|proportionate|not excessive] in the circumstances.",
            "[You have|There is|Suspects have] a [right|legal right|general right] [to remain silent|not to answer questions|to silence], [but|although|though] [in some|in certain|in a few] [systems|jurisdictions|places] [silence|staying silent|not answering] [may|can|could] [support|allow|permit] [adverse inferences|an inference|negative conclusions].",
            "[Time limits|Limitation periods|Prosecution deadlines] [for|on|applying to] [minor|summary|less serious] [offences|crimes|charges] are [often|usually|commonly] [short|brief|tight], [while|whereas|but] [serious|indictable|grave] [offences|crimes] [may have|often have|frequently have] [none|no limit|no deadline].",
        ],
        quotes=[
            "A constable may search a person or vehicle for stolen or prohibited articles if he has reasonable grounds for suspecting that he will find such articles.",
            "A person may use such force as is reasonable in the circumstances in the prevention of crime or in effecting a lawful arrest.",
            "You do not have to say anything, but it may harm your defence if you do not mention when questioned something which you later rely on in court.",
        ],
        links=[("the codes of practice", "https://police.example.gov/codes-of-practice/code-{n}"),
               ("this overview of search powers", "https://www.legal-info.example.org/search-powers"),
               ("the duty solicitor scheme", "https://legal-aid.example.gov/duty-solicitor")],
    ),
    dict(
        name="family",
        tags=["family-law", "divorce", "child-custody", "child-support", "marriage", "inheritance"],
        party="your former partner",
        slots=dict(
            kids=["our two children", "our daughter (aged {age_child})", "our son (aged {age_child})",
                  "our three kids", "my stepson", "our twins"],
            asset=["the family home", "a joint savings account", "a pension", "the car", "a holiday cottage",
                   "the dog", "a small business we run"],
        ),
        titles=[
            "[Ex|My ex|Former partner] [wants to|plans to|is trying to] [move|relocate|take] {kids} to {city2} - [can I stop it|do I have a say|is consent needed]?",
            "[Child support|Maintenance|Child maintenance] [stopped|not paid|missing] for {months} months - [how to enforce|what can I do|enforcement options] in {jur}",
            "[Who keeps|Who gets|How is] {asset} [after|in|during] [a divorce|the separation|divorce proceedings]?",
            "[Unmarried|Cohabiting|Not married] [couple|partners] [splitting up|separating|breaking up] - [rights over|claim to|share of] {asset}?",
            "[Can|May|Is] a [grandparent|grandmother|grandfather] [ask for|apply for|seek] [contact|visitation|access] with {kids}?",
        ],
        facts=[
            "[My|Our] [ex|former partner|ex-wife|ex-husband] and I [separated|split up|broke up] [in|during|around] {month} after {years} years [together|of marriage|of living together].",
            "[Most of the time|Usually|For now], {kids} [live|stay] with me, [and|while|whereas] [visits|contact|time] with [their other parent|my ex|the other parent] [happen|take place|is arranged] every [other weekend|second weekend|fortnight].",
            "[Without|With no|Absent any] [warning|notice|discussion] [my ex|she|he] [announced|told me|said] [a plan|an intention|that they intend] to [move|relocate] {kids} to {city2}.",
            "[The|Our] [court order|consent order|agreement] from {date} [says|sets|fixes] [maintenance|support|payments] at {amount} a month.",
            "[Payments|Those payments|The transfers] [stopped|ceased|dried up] {months} months ago and [the arrears|the unpaid amounts|the missed payments] [now|currently] [total|stand at|amount to] {amount2}.",
            "{asset_cap} is [in|registered in|held in] [my name|my ex's name|both our names], [but|although|while] [we both|both of us|each of us] [paid|contributed|put money] [into|towards] it.",
            "[My|The] [mother|parents|in-laws] [used to|would|regularly did] [look after|care for|babysit] {kids} [twice a week|most afternoons|every holiday] [until|before|prior to] the [split|separation|break-up].",
            "[We were|We never|We had been] [never married|not married|unmarried] [but|and|yet] [lived together|cohabited|shared a home] for {years} years.",
        ],
        asks=[
            "[Can|Could|Would] [my ex|the other parent|she or he] [move|relocate|take] {kids} [away|abroad|that far] [without|absent|lacking] my consent?",
            "[How|What is the best way|What can I do] to [enforce|collect|recover] the [unpaid|missing|outstanding] maintenance?",
            "[How|In what way|On what basis] [will|would|might] {asset} [be|get] [divided|split|shared] [between us|in the settlement|by the court]?",
            "[Do|Would|Could] [unmarried|cohabiting|unwed] partners [have|hold|acquire] [any|a] [claim|right|share] [to|in|over] {asset}?",
            "[Do|Would|Could] [grandparents|my parents|the grandparents] [have|get|obtain] [any|a] [right|standing|legal route] to [see|visit|maintain contact with] {kids}?",
        ],
        rules=[
            "[Courts|Judges|Family courts] [decide|rule on|approach] [relocation|moving children|a move away] [by asking|with reference to|based on] [what is in the child's best interests|the child's welfare|the welfare of the children].",
            "[Where|If|When] [both parents|each parent|the parents] [share|have|hold] [parental responsibility|custody|legal custody], [a major|a significant|an important] [move|relocation|change] [usually|normally|generally] [needs|requires] [the other's consent|agreement|a court order].",
            "[Maintenance|Support|Child support] [arrears|debts|owed sums] [can|may|could] [usually|often|typically] be [enforced|collected|recovered] [through|via|by] [the child support agency|the court|an enforcement office] [with|using|by means of] [wage deductions|attachment of earnings|bank orders].",
            "[Marital|Matrimonial|Shared] [assets|property] [are|tend to be|get] [divided|split|shared] [according to|based on|with regard to] [needs|contributions|fairness], [not|rather than|instead of] [simply|just|strictly] [whose name|the name on the title|legal ownership].",
            "[Cohabitants|Unmarried partners|Couples who never married] [often|usually|generally] [have|enjoy|get] [far fewer|much weaker|limited] [rights|claims|protections] [than|compared with|versus] [married|wed] [couples|spouses|partners], [relying|depending|falling back] [instead|mostly|largely] on [property|trust|ownership] law.",
            "[Grandparents|Relatives|Extended family] [may|can|could] [need|require|have to obtain] [permission|leave|the court's consent] [before|prior to|ahead of] [applying|making an application|filing] for [contact|visitation|access].",
            "[Mediation|Family mediation|A mediator] is [often|usually|in many places] [required|expected|mandatory] [before|prior to|ahead of] [court|proceedings|an application], [unless|except where|other than when] there are [safety|abuse|urgency] [concerns|issues|reasons].",
        ],
        quotes=[
            "When a court determines any question with respect to the upbringing of a child, the child's welfare shall be the court's paramount consideration.",
            "No person may remove a child from the jurisdiction without either the written consent of every person with parental responsibility or the leave of the court.",
            "The court shall have regard to the income, earning capacity, property and other financial resources which each of the parties has or is likely to have in the foreseeable future.",
        ],
        links=[("the family court guidance", "https://family-court.example.gov/guidance-{n}"),
               ("the child maintenance service", "https://maintenance.example.gov/enforcement"),
               ("a mediation directory", "https://www.family-mediation.example.org/find")],
    ),
    dict(
        name="tax",
        tags=["tax-law", "income-tax", "self-employment", "vat", "tax-residency", "capital-gains"],
        party="the tax authority",
        slots=dict(
            income=["freelance design work", "rental income from a spare room", "crypto trading gains",
                    "tips from a restaurant job", "sales on Etsy", "a remote job for a foreign company",
                    "YouTube ad revenue", "selling an inherited flat", "dividends from shares"],
        ),
        titles=[
            "[Do I have to|Must I|Should I] [pay tax|declare tax|file a return] on {income} of {amount} a year in {jur}?",
            "[Tax residency|Where am I tax resident|Which country taxes me] [after|when|if] [spending|living] {months} months [abroad|in another country|outside {jur}]?",
            "[Forgot|Failed|Neglected] to [declare|report|include] {income} for {years} years - [how bad is it|what now|penalties]?",
            "[Received|Got|Was sent] a tax [bill|assessment|demand] of {amount2} [that looks wrong|I dispute|that seems too high] - [how to appeal|what to do|can I challenge it]?",
            "[Is|Are] {income} [taxable|subject to tax|liable to tax] [if|when|where] [the money|payment|the platform] [comes from|is paid from|is based] abroad?",
        ],
        facts=[
            "[For|During|Over] the past {years} years I have [earned|made|received] [about|roughly|some] {amount} a year from {income}.",
            "[I never|I did not|I have not] [registered|signed up|enrolled] as [self-employed|a sole trader|a business] [because|as|since] I [thought|assumed|believed] it was [too small|a hobby|below the threshold].",
            "[Last year|In {month}|This year] I [spent|lived|stayed] {months} months in {country} [working remotely|on a contract|with family].",
            "[The|A] [tax office|revenue service|tax authority] [sent|issued|posted] [an assessment|a bill|a demand] for {amount2}, [including|plus|with] [interest|penalties|surcharges].",
            "[My|The] [accountant|bookkeeper|tax preparer] [retired|quit|disappeared] and [left|gave|returned] [my|the] [records|receipts|files] [incomplete|in a mess|partly missing].",
            "[The|My] [platform|client|employer] [pays|paid|sends] [me|the money] [in|via] [dollars|euros|crypto] [into|to] an account [abroad|overseas|in {country}].",
            "[I kept|I have|There are] [receipts|invoices|records] for [equipment|expenses|costs] [worth|totalling|of] {amount3}.",
        ],
        asks=[
            "[Is|Does] {income} [count as|qualify as|amount to] [taxable|reportable|assessable] income [at this level|at these amounts|in my case]?",
            "[Can|Should|Could] I [make|file|use] a [voluntary disclosure|correction|late declaration] to [reduce|limit|avoid] [penalties|fines|surcharges]?",
            "[Which|What] country [has|gets|holds] the [right|primary right|taxing right] to [tax|charge tax on] [this|my|the] income?",
            "[How|What is the process to|In what way can I] [appeal|challenge|dispute] the [assessment|tax bill|demand]?",
            "[Can|May|Could] I [deduct|claim|offset] the {amount3} [of|in] [expenses|costs|equipment]?",
        ],
        rules=[
            "[Most|Many|Nearly all] [tax systems|countries|jurisdictions] [tax|charge tax on] [worldwide|all|global] income of [residents|tax residents|resident individuals], [and|while|whereas] [non-residents|others|non-resident people] [are taxed|pay tax] [only|just|solely] on [local|domestic|source] income.",
            "[Residency|Tax residence|Being tax resident] [often|usually|commonly] [turns|depends|hinges] on a [day count|number of days|183-day rule] [plus|and|as well as] [ties|connections|links] such as [a home|family|work].",
            "[Double tax|Double taxation|Tax] [treaties|agreements|conventions] [decide|allocate|determine] [which|what] [country|state] [may|can|gets to] tax, and [provide|give|offer] [credits|relief|exemptions] to [avoid|prevent|stop] [paying twice|double taxation|being taxed twice].",
            "[Hobby|Occasional|Side] income [is|remains|stays] [taxable|reportable|assessable] [once|when|if] [it shows|there is|it has] a [profit motive|business character|regular pattern]; [small|minor|tiny] [amounts|sums] [may|can|might] [fall under|be covered by|sit within] an [allowance|exemption|threshold].",
            "[Voluntary|Unprompted|Self-initiated] disclosure [before|prior to|ahead of] [the authority|the tax office|they] [contacts you|asks|opens an enquiry] [usually|normally|generally] [attracts|leads to|means] [much lower|reduced|smaller] penalties.",
            "[Appeals|Objections|Challenges] [against|to] [assessments|tax bills|demands] [must|have to|need to] [usually|normally|generally] be [lodged|filed|made] within a [short|strict|fixed] [window|period|deadline], [often|frequently|typically] {days} days.",
            "[Expenses|Costs|Outgoings] [wholly|exclusively|solely] [incurred|spent] for the [business|trade|activity] [are|can be|are usually] [deductible|allowable|claimable], [but|though|although] [mixed|personal|private] [use|elements|portions] [must|need to|have to] be [apportioned|split|excluded].",
        ],
        quotes=[
            "An individual is resident for the tax year if he is present in the country for 183 days or more in that year, or meets one of the automatic residence tests.",
            "Where a person has failed to notify chargeability, a penalty may be reduced to nil if the disclosure is unprompted and made within twelve months.",
            "Income arising from a trade, profession or vocation shall be computed in accordance with generally accepted accounting practice.",
        ],
        links=[("the residence tests", "https://tax.example.gov/residence-tests"),
               ("the disclosure facility", "https://tax.example.gov/voluntary-disclosure-{n}"),
               ("the treaty text", "https://treaties.example.org/double-tax/{n}")],
    ),
    dict(
        name="defamation",
        tags=["defamation", "libel", "slander", "social-media", "freedom-of-speech", "online-reviews"],
        party="the poster",
        slots=dict(
            statement=["a one-star review calling my bakery a scam", "a post saying I stole from my employer",
                       "a tweet claiming I am a fraud", "a forum thread accusing me of cheating customers",
                       "a Facebook post calling my clinic dangerous", "a video saying I faked my qualifications"],
            biz=["bakery", "dental practice", "tattoo studio", "driving school", "dog grooming business",
                 "plumbing firm", "yoga studio", "bike repair shop"],
        ),
        titles=[
            "[Customer|A customer|Someone] [posted|published|wrote] {statement} - [is it defamation|can I sue|what are my options]?",
            "[Can I|May I|Is it legal to] [leave|post|write] [an honest|a negative|a critical] review of a {biz} [without|with no risk of|and avoid] being [sued|taken to court|threatened]?",
            "[Threatened|Warned|Sent a letter] with a [defamation|libel|slander] [suit|claim|lawsuit] [over|for|about] a [review|post|comment] I wrote",
            "[Is|Would] [repeating|sharing|retweeting] [someone else's|another person's|a third party's] [accusation|claim|allegation] [defamatory|actionable|a risk]?",
            "[Platform|Website|Review site] [refuses|declines|will not agree] to [remove|take down|delete] {statement}",
        ],
        facts=[
            "I [run|own|manage] a small {biz} in {city} with {n} [staff|employees|people working for me].",
            "[On|Last] {date} [someone|a former customer|an anonymous user] [published|posted|wrote] {statement}.",
            "[Since then|After that|Following the post] [bookings|sales|enquiries] [dropped|fell|went down] by [about|roughly|around] {pct}%.",
            "[The|That] [post|review|comment] [has been|was] [shared|reposted|viewed] [more than|over|about] {n}00 times.",
            "[I|We] [asked|requested|wrote to ask] the [platform|site|website] to [remove|take down|delete] it [on|back on] {date2}, [but|and|yet] [they|the site] [refused|declined|said no].",
            "[I|Instead, I] [wrote|posted|published] a [review|comment|post] [saying|stating|claiming] the {biz} [overcharged me|ripped me off|misled me] by {amount}.",
            "[Yesterday|Today|This week] [I received|I got|there came] a [solicitor's letter|lawyer's letter|cease-and-desist letter] [demanding|asking|requiring] [removal|a retraction|an apology] and {amount2}.",
            "[Everything|All of it|What I wrote] [is|was] [true|accurate|factual] and [I have|I kept|there is] [receipts|photos|email records] [to prove it|as evidence|backing it up].",
        ],
        asks=[
            "[Would|Does|Could] [the|this|that] [post|review|statement] [count as|amount to|constitute] [defamation|libel|actionable defamation]?",
            "[Can|Could|Would] I [force|make|compel] the [platform|site|website] to [remove|delete|take down] it or [reveal|disclose|identify] who [wrote|posted] it?",
            "[Is|Would] [truth|the truth|accuracy] [a|a complete|a full] defence [to|against|in] [the|this|a] claim?",
            "[Should I|Do I need to|Must I] [remove|delete|take down] my [review|post|comment] [because of|after|following] the [letter|threat|demand]?",
            "[What|How much] [damages|compensation|money] [could|might|would] [be|get] [awarded|paid|ordered] [in|for|over] [a case like this|such a claim|this]?",
        ],
        rules=[
            "[Defamation|A defamation claim|Libel] [requires|needs|involves] a [false|untrue] statement of [fact|facts], [published|communicated|made] to [others|third parties|someone else], [that|which] [harms|damages|lowers] [reputation|your standing|your good name].",
            "[Opinion|Honest opinion|Fair comment] [is|remains|stays] [generally|usually|normally] [protected|a defence|safe] [if|when|where] it is [clearly|recognisably|obviously] [opinion|comment|a view] [based on|grounded in|resting on] [true|accurate|stated] facts.",
            "[Truth|Substantial truth|Justification] is [a complete|a full|an absolute] [defence|answer]; [the burden|the onus|the task] of [proving|showing|establishing] it [often|usually|may] [lies|falls|rests] on the [defendant|person who said it|publisher].",
            "[Some|Several|Many] [jurisdictions|countries|places] [require|need|demand] [serious harm|a threshold of harm|substantial damage], [and|so|which means] [companies|businesses|firms] [must|need to|have to] [show|prove|demonstrate] [serious|real|substantial] [financial loss|loss|harm].",
            "[Platforms|Hosts|Websites] [are|tend to be|are often] [shielded|protected|immune] from [liability|being sued|claims] for [user|third-party|users'] content [in|under] [US law|some systems|Section 230], [but|while|whereas] [elsewhere|in Europe|in other places] [notice-and-takedown rules|takedown duties|removal duties] [apply|exist|operate].",
            "[Repeating|Republishing|Sharing] a [defamatory|false|damaging] statement [can|may|could] [make|render] [you|the sharer|the person repeating it] [liable|responsible|answerable] [too|as well|in turn], [even|even if|although] [you|they] [did not|didn't] [write|invent|originate] it.",
            "[Limitation|Time limits|Deadlines] for [defamation|libel] [claims|actions|suits] are [short|brief|tight], [often|usually|commonly] [one|a single|1] year [from|after|since] [publication|posting|first publication].",
        ],
        quotes=[
            "A statement is not defamatory unless its publication has caused or is likely to cause serious harm to the reputation of the claimant.",
            "It is a defence to an action for defamation for the defendant to show that the imputation conveyed by the statement complained of is substantially true.",
            "No provider or user of an interactive computer service shall be treated as the publisher or speaker of any information provided by another information content provider.",
        ],
        links=[("the defamation statute", "https://legislation.example/defamation-act/section-{n}"),
               ("the platform's reporting form", "https://reviews.example.com/report"),
               ("an explainer on honest opinion", "https://www.media-law.example.org/honest-opinion")],
    ),
    dict(
        name="trademark",
        tags=["trademark", "intellectual-property", "patents", "business-name", "branding", "infringement"],
        party="the trademark owner",
        slots=dict(
            brand=["Lumora", "Pebblewick", "Hexacorn", "Vantly", "Brisko", "Oakhoney", "Zephyra", "Nordlume",
                   "Kettleby", "Quenchly", "Moxiqo", "Tallowby"],
            product=["herbal tea", "phone cases", "a budgeting app", "handmade candles", "dog treats",
                     "running shoes", "a board game", "craft beer", "skincare cream", "bicycle lights"],
        ),
        titles=[
            "[Can I|May I|Is it safe to] [use|register|trade under] the name {brand} for {product} [if|when|given that] a [similar|comparable|close] name [exists|is registered|is in use]?",
            "[Received|Got|Was sent] a cease-and-desist [over|about|for] my {product} [brand|name|logo] {brand} - [should I rebrand|must I comply|is it valid]?",
            "[Is|Would] [my|an] [invention|idea|design] for {product} [patentable|protectable|eligible for a patent] [after|if|even though] I [showed it|posted it|demoed it] [publicly|online|at a fair]?",
            "[Selling|Reselling|Offering] [genuine|second-hand|used] {product} [with|under|using] the [original|maker's|brand] [logo|trademark|name] - [infringement|legal|allowed]?",
            "[Someone|A competitor|Another company] [registered|filed|applied for] {brand} [as a trademark|in {jur}|before me] [after|even though] I [used it|started using it|launched] first",
        ],
        facts=[
            "[Since|For] {years} years I have [sold|made|marketed] {product} [under|using|with] the name {brand} [online|at markets|in {city}].",
            "{company} [sent|issued|posted] me a [letter|cease-and-desist|warning] [claiming|alleging|asserting] that {brand} [infringes|is confusingly similar to|clashes with] their [trademark|mark|brand].",
            "[Their|The] [registered|existing|other] mark [covers|is registered for|applies to] [a different|another|an unrelated] [class|category|market] [from|than|to] {product}.",
            "[I never|I did not|I haven't] [registered|filed|applied for] the [name|brand|mark] [anywhere|in any register|officially], [but|though|although] [I own|I hold|I bought] the [domain|website address|.com].",
            "[At|During] a [trade fair|maker fair|expo] in {month} I [showed|demonstrated|presented] a [prototype|first version|sample] of [my|a new] {product} [to|in front of] [visitors|the public|buyers].",
            "[They|The letter|The company] [give|gives|set] me {days} days to [stop|cease|halt] [using|trading under|selling as] {brand} and [destroy|hand over|recall] [stock|inventory|packaging] [worth|valued at|of] {amount}.",
            "[Sales|Turnover|Revenue] under the [name|brand] [reached|came to|were] {amount2} [last year|in {month}|so far].",
        ],
        asks=[
            "[Does|Would|Is] [my|the] use of {brand} [infringe|violate|breach] their [trademark|mark|rights]?",
            "[Do|Would|Could] [I|my earlier use|prior use] [have|give me|create] [any|some] [rights|protection|a defence] [without|absent|lacking] registration?",
            "[Should|Must|Do] I [comply|stop|rebrand] [within|by|before] the {days}-day deadline?",
            "[Can|Could|Is] [my|the] {product} [design|invention|idea] [still|even now] [be patented|get protection|qualify for a patent] [after|despite|following] the [public|fair|online] disclosure?",
            "[What|Which] [searches|checks|steps] [should I|do I need to|must I] [do|run|carry out] [before|prior to|ahead of] [registering|filing|applying for] a [mark|trademark|name]?",
        ],
        rules=[
            "[Trademark|Trade mark|Mark] infringement [usually|normally|generally] [requires|needs|turns on] a [likelihood of confusion|risk of confusion|chance of confusing buyers] [about|as to|regarding] [origin|the source|who makes the goods].",
            "[Marks|Trademarks|Registrations] are [registered|filed|granted] [per|by|for specific] [class|classes|categories] of goods; [the same|an identical|a similar] [word|name|mark] [can|may|could] [coexist|be shared|be used] [in|across] [unrelated|different|distant] [markets|sectors|classes].",
            "[Famous|Well-known|Reputed] marks [get|enjoy|receive] [wider|broader|extra] [protection|coverage|rights] [that|which] [can|may|could] [reach|extend to|cover] [dissimilar|unrelated|other] goods.",
            "[Unregistered|Common-law|Prior] [use|rights|marks] [can|may|could] [give|create|provide] [some|limited|local] protection [through|via|under] [passing off|unfair competition|common law], [but|though|although] [proving|showing|establishing] [goodwill|reputation|a customer base] [takes|needs|requires] evidence.",
            "[A|Most|Many] patent [systems|offices|laws] [require|need|demand] [novelty|absolute novelty|newness]; [public|prior|earlier] disclosure [before|prior to|ahead of] filing [can|may|could] [destroy|defeat|kill] [it|patentability|novelty], [though|although|but] [some|the US and some other|certain] [systems|countries|places] [allow|give|offer] a [grace period|short grace period|one-year grace].",
            "[Reselling|Selling on|Resale of] [genuine|authentic|original] goods [is|tends to be] [generally|usually|normally] [allowed|lawful|permitted] [under|because of|thanks to] [exhaustion|first sale|the first-sale doctrine], [unless|except where|except if] the [goods|products|items] [were altered|have been changed|are modified].",
            "[A|An] [cease-and-desist|demand|warning] letter [is|remains] [not|never] a [court order|judgment|ruling]; [unjustified|groundless|baseless] [threats|demands|claims] [can|may|could] [themselves|in turn|even] be [actionable|challenged|sued over] [in some|in certain|in several] [countries|jurisdictions|systems].",
        ],
        quotes=[
            "A person infringes a registered trade mark if he uses in the course of trade a sign where, because of its similarity, there exists a likelihood of confusion on the part of the public.",
            "An invention shall be considered to be new if it does not form part of the state of the art, which comprises everything made available to the public before the date of filing.",
            "The proprietor of a registered trade mark is not entitled to prohibit its use in relation to goods which have been put on the market under that trade mark by the proprietor or with his consent.",
        ],
        links=[("the trademark register search", "https://tm-register.example.gov/search"),
               ("the classification list", "https://wipo.example.int/classes/class-{n}"),
               ("the patent office guidance on disclosure", "https://patents.example.gov/grace-period")],
    ),
    dict(
        name="consumer",
        tags=["consumer-protection", "refund", "warranty", "online-shopping", "chargeback", "faulty-goods"],
        party="the retailer",
        slots=dict(
            goods=["a washing machine", "a laptop", "a sofa", "an e-bike", "a pair of hiking boots",
                   "a smartphone", "a gym membership", "a mattress", "a coffee machine", "concert tickets",
                   "a fridge freezer", "noise-cancelling headphones"],
            fault=["stopped working", "arrived damaged", "caught fire", "started leaking",
                   "was not as described", "had a cracked screen", "made a grinding noise"],
        ),
        titles=[
            "[Shop|Retailer|Store] [refuses|won't give|denies me] a refund for {goods} that {fault} after {weeks} weeks",
            "[Can I|Should I|Is it OK to] [do a chargeback|dispute the charge|reverse the payment] [for|on] {goods} [that|which] {fault}?",
            "[Online order|Internet purchase|Web order] of {goods} [never arrived|went missing|was lost] - [who is responsible|whose problem is it|who pays]?",
            "[Is|Does] a [manufacturer's|store|extended] warranty [replace|override|limit] my [statutory|legal|consumer] rights?",
            "[Cancel|Cancelling|Ending] {goods} [contract|subscription|membership] [early|mid-term|before the end] - [fees|penalty|charges] of {amount}?",
        ],
        facts=[
            "[On|Back on] {date} I [bought|ordered|purchased] {goods} from {company} for {amount}.",
            "[After|Within|Only] {weeks} weeks it {fault}, [despite|even with|in spite of] [normal|careful|ordinary] use.",
            "[The|Their] [store|shop|customer service] [says|told me|insists] I [must|have to|need to] [contact|deal with|go to] the manufacturer [instead|directly|myself].",
            "[They|The retailer|{company}] [offered|proposed|suggested] [a repair|store credit|a voucher] [but|yet|and] [refused|declined|would not give] [a refund|my money back|cash].",
            "[I paid|Payment was made|The purchase was paid] [by|with|using] [credit card|debit card|PayPal] and [still have|kept|hold] the [receipt|order confirmation|invoice] [numbered|with number|ref.] {ref}.",
            "[The|Their] [tracking|delivery tracking|courier app] [says|shows|claims] [delivered|left in a safe place|handed to resident] on {date2}, [but|yet|however] [nothing|no parcel|no package] [was there|arrived|came].",
            "[The|A] [repair|first repair|previous repair] [took|lasted|needed] {weeks} weeks and [the same|an identical|the very same] fault [came back|returned|reappeared] {days} days [later|afterwards|on].",
        ],
        asks=[
            "[Am I|Would I be|Am I legally] [entitled|eligible] to a [full refund|refund|replacement] [rather than|instead of|not just] a repair?",
            "[Is|Can] the [retailer|seller|shop] [allowed|permitted|able] to [send me|refer me|push me] to the manufacturer?",
            "[Would|Will|Could] a chargeback [work|succeed|be appropriate] [here|in this case|for this]?",
            "[Who|Which party|Whose responsibility] [bears|carries|takes] the [risk|loss] [if|when|where] the [parcel|delivery|package] [goes missing|is lost|disappears]?",
            "[Is|Would] the {amount} [cancellation|early exit|termination] [fee|charge|penalty] [fair|enforceable|lawful]?",
        ],
        rules=[
            "[Your|The] [contract|claim|legal relationship] [is|sits] with the [retailer|seller|shop], [not|rather than|and not] the manufacturer, so [the seller|the shop|the retailer] [cannot|can't|may not] [simply|just|merely] [pass you on|redirect you|send you away].",
            "[Goods|Products|Items] [must|have to|need to] be [of satisfactory quality|of acceptable quality|fit for purpose] and [as described|match the description|correspond to the description]; [a fault|a defect|failure] [within|inside|during] the first [months|six months|period] is [usually|often|generally] [presumed|assumed|taken] to have been [present|there] [at delivery|from the start|on sale].",
            "[A|One] [failed|unsuccessful|unsatisfactory] repair [usually|normally|generally] [entitles|allows|permits] you to [a refund|a price reduction|reject the goods], [perhaps|possibly|sometimes] [minus|less|reduced by] a [deduction|sum] for [use|usage|the use you had].",
            "[Chargebacks|Card disputes|Payment disputes] [are|remain|stay] [governed|controlled|decided] by [card scheme|payment network|issuer] rules, [not|rather than|instead of] [consumer|national] law, [but|though|although] [they|banks|issuers] [often|usually|frequently] [work|succeed|help] for [undelivered|non-delivered|missing] goods.",
            "[Until|Before|Up to the point] [goods|items|a parcel] [reach|are received by|come into the possession of] the consumer, [the risk|risk of loss|responsibility] [normally|usually|generally] [stays|remains|lies] with the [seller|trader|retailer].",
            "[Warranties|Guarantees|Extended warranties] [add to|sit on top of|supplement] [statutory|legal|your legal] rights; [they|a warranty|the guarantee] [cannot|can't|may not] [reduce|limit|take away] [them|those rights|what the law gives you].",
            "[Unfair|Disproportionate|Excessive] [cancellation|exit|termination] [fees|charges|penalties] in [consumer|standard-form|consumer] contracts [can|may|could] be [struck down|non-binding|unenforceable] [under|as|by virtue of] unfair terms [law|rules|legislation].",
        ],
        quotes=[
            "Every contract to supply goods is to be treated as including a term that the quality of the goods is satisfactory.",
            "Goods which do not conform to the contract at any time within the period of six months beginning with the day of delivery must be taken not to have conformed to it on that day.",
            "An unfair term of a consumer contract is not binding on the consumer.",
        ],
        links=[("the consumer rights guide", "https://consumer.example.gov/rights/faulty-goods"),
               ("the card issuer's dispute page", "https://bank.example.com/disputes"),
               ("the unfair terms guidance", "https://consumer.example.gov/unfair-terms-{n}")],
    ),
    dict(
        name="neighbours",
        tags=["property", "nuisance", "neighbours", "boundary", "easement", "trees"],
        party="your neighbour",
        slots=dict(
            nuisance=["a hedge that blocks all light", "a dog barking all night", "a wood-burning stove smoking into my windows",
                      "loud music until 3am", "tree roots cracking my driveway", "a garden shed built over the boundary",
                      "a security light shining into my bedroom", "a drone flying over my garden"],
        ),
        titles=[
            "[Neighbour's|Next door's|My neighbour's] {nuisance} - [what can I legally do|my options|can I take action]?",
            "[Can I|May I|Am I allowed to] [cut|trim|remove] [branches|roots|parts of a tree] [that|which] [overhang|cross|hang over] [the boundary|my fence|my garden]?",
            "[Boundary|Property line|Fence line] [dispute|disagreement|argument]: [neighbour|next door|the new owner] [claims|says|insists] {n} metres of my [garden|land|drive]",
            "[Right of way|Access right|Easement] [over|across|through] my [driveway|land|yard] - [can it be|is it|may it be] [blocked|closed|restricted]?",
            "[Is it|Would it be] [legal|lawful] to [record|film|document] {nuisance} [as|for|to gather] evidence?",
        ],
        facts=[
            "[Since|For the past|Over the last] {months} months [my neighbour|the family next door|the household next door] [has had|has caused|has been responsible for] {nuisance}.",
            "[I have|I've|We have] [asked|spoken to|approached] them [politely|calmly|in person] {n} times, [and|but] [nothing|little|not much] [changed|improved|happened].",
            "[The|Our] [title plan|land registry plan|registry plan] [shows|indicates|marks] the [boundary|line|fence] [running|following|along] [the old wall|a straight line|the hedge].",
            "[A|The] [surveyor|valuer|builder] [estimated that|said that|told me that] the [damage|repair|fix] [would cost|will cost|is going to cost] {amount2}.",
            "[The|My] [house|property|home] was [bought|purchased|acquired] in {month} [from|off|through] {company}, and [nobody|no one|not a single person] [mentioned|disclosed|told us about] [any dispute|the issue|a problem].",
            "[The|Their] [access|right of way|path] [runs|goes|crosses] [along|over|through] [the side|the edge|the back] of [my|our] [driveway|garden|yard] [for|over|across] about {n} metres.",
            "[I|We] [kept|have kept|started] a [diary|log|record] [since|from|as of] {date}, [noting|recording|listing] [each|every] [incident|occasion|episode].",
        ],
        asks=[
            "[Does|Would|Is] {nuisance} [amount to|count as|constitute] a [legal|statutory|private] nuisance?",
            "[Can I|May I|Am I entitled to] [cut back|trim|remove] the [overhanging|encroaching|crossing] [parts|branches|roots] [myself|on my own|without asking]?",
            "[How|In what way|By what process] [is|are] [boundary|property line|fence] disputes [resolved|settled|decided]?",
            "[Can|May|Could] [I|we|the owner] [block|restrict|close] the [right of way|access|path]?",
            "[Should I|Is it sensible to|Do I need to] [involve|contact|call] the [council|local authority|municipality] [first|before suing|at this stage]?",
        ],
        rules=[
            "[Private nuisance|Nuisance|An actionable nuisance] [is|means|involves] an [unreasonable|substantial|significant] [interference|intrusion] with [the use|enjoyment|the use and enjoyment] of [land|your property|your home]; [courts|judges|tribunals] [weigh|consider|balance] [duration|frequency|intensity] and [the locality|the area|the neighbourhood].",
            "[You can|You may|An owner may] [usually|normally|generally] [cut back|trim|remove] [branches|roots|growth] [to|up to|as far as] the boundary, [but|though|although] [not|never] [beyond it|onto their land|past the line], and [the cuttings|the branches|what you cut] [belong|still belong] to [the tree's owner|them|the neighbour].",
            "[Boundaries|Boundary lines|Property lines] [on|in|shown by] [title plans|registry plans|deed plans] are [often|usually|frequently] [general|approximate|indicative], so [old|historic|original] [deeds|conveyances|documents] and [physical features|fences|walls] [may|can|could] [decide|settle|determine] the [exact|precise|true] line.",
            "[An easement|A right of way|An access right] [cannot|can't|may not] [generally|usually|normally] be [blocked|obstructed|restricted] [unilaterally|on your own|by one side]; [substantial|real|material] [interference|obstruction|blocking] [is|would be|can be] actionable.",
            "[Councils|Local authorities|Municipalities] [often|usually|frequently] [have|hold|use] [statutory|special|legal] [powers|duties|tools] [for|against|over] [noise|smoke|light] nuisance, [which|and this|so this] [is|can be|tends to be] [cheaper|less risky|faster] [than|compared to|versus] [suing|litigation|going to court].",
            "[Recording|Filming|Documenting] [from|within|on] your own [property|land|garden] [for|as|to gather] evidence is [generally|usually|normally] [lawful|allowed|fine], [provided|as long as|so long as] you [do not|don't|avoid] [film|filming|recording] [inside|into] their [home|house|private rooms].",
        ],
        quotes=[
            "The owner of land may cut back branches and roots that encroach from neighbouring land, provided the work does not go beyond the boundary.",
            "A statutory nuisance includes any noise emitted from premises so as to be prejudicial to health or a nuisance.",
            "The grantee shall have a right of way at all times and for all purposes over the path coloured brown on the plan.",
        ],
        links=[("the council's noise complaint page", "https://council.example.gov/noise"),
               ("the guidance on high hedges", "https://planning.example.gov/high-hedges-{n}"),
               ("the land registry's boundary guide", "https://land-registry.example.gov/boundaries")],
    ),
    dict(
        name="wills",
        tags=["inheritance", "wills", "estate", "probate", "executor", "trusts"],
        party="the executor",
        slots=dict(
            deceased=["my grandmother", "my father", "my aunt", "my uncle", "my mother", "my stepfather",
                      "my godmother", "my late husband", "my late wife"],
            estate_item=["a house in {city2}", "a savings account", "a collection of paintings", "a farm",
                         "shares in a family company", "a flat by the sea", "a classic car"],
        ),
        titles=[
            "[Executor|The executor|My brother as executor] [refuses|will not|won't] [share|show|disclose] [the will|estate accounts|details] [after|since|following] {deceased} [died|passed away|passed]",
            "[Left out of|Excluded from|Cut out of] {deceased}'s will - [can I contest it|do I have a claim|what are my rights]?",
            "[Is|Would] a [handwritten|home-made|unwitnessed] will [valid|legally valid|enforceable] in {jur}?",
            "[Who inherits|Who gets|How is] {estate_item} [when|if|where] there is [no will|no valid will|no testament]?",
            "[Do I have to|Must I|Will I] [pay|inherit|take over] {deceased}'s [debts|loans|credit card debt]?",
        ],
        facts=[
            "{deceased_cap} [died|passed away|passed] [in|during|last] {month} [at the age of|aged|at] {age_old}.",
            "[The|Her|His] [will|last will|testament] was [written|made|signed] {years} years ago and [leaves|gives|passes] {estate_item} to [a neighbour|a charity|my cousin].",
            "[My|Our] [brother|sister|cousin] is the [executor|named executor|personal representative] and [has not|hasn't|refuses to] [shared|provided|sent] [any|a single|the] [accounts|figures|documents].",
            "[The|A] [will|document|testament] [we found|that turned up|discovered] [in a drawer|among papers|in a safe] is [handwritten|home-made|typed] and [has|carries|bears] [only|just|no more than] one [witness|signature|witness signature].",
            "[I|We] [cared for|looked after|supported] {deceased} [for|during|over] the last {years} years, [often|frequently|regularly] [paying|covering|funding] [bills|care costs|expenses] of {amount} a month.",
            "[The|Total|Overall] [estate|assets|property] [is|are|has been] [worth|valued at|estimated at] [about|roughly|around] {amount2}, [with|plus|and] [debts|liabilities|loans] of {amount3}.",
            "[A|The] [bank|lender|credit card company] [wrote|sent a letter|contacted me] [asking|demanding|requesting] that I [pay|settle|clear] {deceased}'s [balance|debt|loan] of {amount}.",
        ],
        asks=[
            "[Can|Could|Is it possible to] [force|compel|make] the executor to [provide|produce|hand over] [accounts|an inventory|the figures]?",
            "[Do I|Would I|Could I] [have|bring|make] a [claim|challenge|case] [against|to|on] the [will|estate]?",
            "[Is|Would|Could] [the|this|a] [handwritten|unwitnessed|home-made] will [be|count as|stand as] valid?",
            "[Who|Which relatives|What family members] [inherits|inherit|get] [under|by|according to] the [intestacy|no-will|default] rules?",
            "[Am I|Are relatives|Is the family] [personally|legally|individually] [liable|responsible|on the hook] for {deceased}'s [debts|loans|liabilities]?",
        ],
        rules=[
            "[An executor|A personal representative|The executor] [owes|has|bears] [duties|fiduciary duties|legal duties] to the [beneficiaries|heirs|people who inherit], [including|such as|among them] [keeping|providing|rendering] [proper|accurate|full] accounts.",
            "[Beneficiaries|Heirs|Those who inherit] [can|may|are able to] [usually|often|typically] [apply|ask|petition] to the [court|probate court|probate registry] [to|in order to|so as to] [compel|force|require] an [inventory|account|estate account] or [remove|replace|displace] a [defaulting|failing|non-performing] executor.",
            "[Formal|Witnessing|Execution] [requirements|rules|formalities] for wills [vary|differ|change] [a lot|greatly|widely]: [some|many|certain] [places|jurisdictions|systems] [accept|allow|recognise] [handwritten|holographic|home-written] wills [without|absent|with no] witnesses, [others|some|many others] [require|need|insist on] two.",
            "[Family members|Dependants|Close relatives] [left out|disinherited|excluded] [may|can|could] [have|bring] a [claim|right|forced-share claim] [for|to] [reasonable provision|a reserved portion|a share], [depending|depending on|based] [on|upon] the [jurisdiction|country|state] and [their|your] [need|relationship|dependence].",
            "[Where|When|If] there is no [valid|effective|proper] will, [statutory|default|intestacy] rules [decide|set|determine] [who inherits|the heirs|the order of heirs], [usually|normally|typically] [spouse|the spouse] [and|then|followed by] [children|descendants|issue] [first|before others|ahead of others].",
            "[Debts|Liabilities|Outstanding loans] are [paid|settled|met] [from|out of] the [estate|deceased's assets|estate assets]; [relatives|heirs|family members] [are not|aren't|are normally not] [personally|individually|themselves] [liable|responsible] [unless|except where|except if] they [co-signed|guaranteed|were joint borrowers].",
        ],
        quotes=[
            "No will shall be valid unless it is in writing and signed by the testator, and the signature is made or acknowledged in the presence of two or more witnesses present at the same time.",
            "The personal representative shall, when required to do so by the court, exhibit on oath in the court a full inventory of the estate and render an account of the administration.",
            "Where a person dies without a will, the residuary estate shall be held on trust for the surviving spouse absolutely, subject to the statutory legacy.",
        ],
        links=[("the probate guidance", "https://probate.example.gov/guidance-{n}"),
               ("the intestacy rules", "https://www.gov.example/inherits-someone-dies-without-will"),
               ("this note on contesting a will", "https://www.wills-law.example.org/contesting")],
    ),
    dict(
        name="business",
        tags=["business", "corporate-law", "llc", "partnership", "liability", "invoicing"],
        party="the client",
        slots=dict(
            venture=["a small web agency", "a food truck", "a cleaning company", "an online store",
                     "a photography studio", "a consulting side business", "a bike courier service",
                     "a coffee roastery", "a mobile app startup"],
        ),
        titles=[
            "[Client|A customer|A client company] [has not paid|won't pay|refuses to pay] an invoice of {amount2} for {days} days - [what can I do|how to recover it|next steps]?",
            "[Sole trader|Sole proprietorship|Self-employed] or [limited company|LLC|incorporation] for {venture} in {jur}?",
            "[Business partner|My co-founder|My partner in the business] [took|withdrew|moved] {amount} from the [company|business|joint] account [without asking|without consent|secretly]",
            "[Am I|Would I be|Can I be] [personally|individually|privately] liable for {venture}'s [debts|obligations|liabilities]?",
            "[Can I|May I|Is it legal to] [use|run|operate] {venture} [from|out of|at] [home|my rented flat|a residential address]?",
        ],
        facts=[
            "I [run|started|set up] {venture} in {city} [about|roughly|some] {years} years ago [with|alongside|together with] a [friend|former colleague|co-founder].",
            "[In|During|Back in] {month} we [delivered|completed|finished] a project for {company} and [invoiced|billed|charged] {amount2} [on|with] {days}-day terms.",
            "[Despite|After|Even with] {n} [reminders|chasers|follow-up emails], [the client|they|{company}] [has not paid|still owes|has paid nothing of] the [invoice|bill|balance].",
            "[We never|We did not|We didn't] [write|sign|draw up] a [partnership agreement|shareholders' agreement|founders' agreement] [setting out|covering|defining] [who owns what|shares|profit splits].",
            "[My|The] [co-founder|partner|business partner] [transferred|withdrew|took] {amount} [to|into] [their|a personal|a private] account [last|on] {weekday} [without|with no|lacking] [telling me|asking|approval].",
            "[Right now|Currently|At the moment] the [business|firm|company] is [unincorporated|not registered as a company|a simple partnership] and [turns over|makes|earns] [about|roughly|around] {amount3} a year.",
            "[Our|My] [lease|tenancy|rental contract] [forbids|prohibits|does not allow] [running|operating|conducting] a business [from|at|in] the [property|flat|premises].",
        ],
        asks=[
            "[Can I|Should I|Is it wise to] [charge|add|claim] [late payment|statutory|default] interest [on|for|to] the [unpaid|overdue|late] invoice?",
            "[Which|What] [structure|legal form|entity] [would|will|does] [protect|shield|insulate] my [personal|private|own] [assets|savings|home] [best|most|more]?",
            "[Did|Has|Could] my [partner|co-founder|colleague] [act|behave|do something] [unlawfully|illegally|wrongly] [by|in] [taking|withdrawing|moving] the money?",
            "[How|By what route|Through which process] [can I|could I|do I] [recover|collect|get] the [debt|money owed|unpaid sum] [without|short of|before] [expensive|costly|full] litigation?",
            "[Would|Does|Could] [running|operating|working] the business from home [breach|violate|break] [the|my] [lease|tenancy|rental terms]?",
        ],
        rules=[
            "[Many|Most|Several] [jurisdictions|countries|legal systems] [give|grant|provide] [businesses|suppliers|creditors] a [statutory|legal|default] right to [interest|late payment interest|compensation] on [late|overdue|unpaid] commercial invoices.",
            "[A|An] [limited company|LLC|corporation] [is|acts as|forms] a [separate|distinct|independent] legal person, so [its|the company's|the firm's] [debts|obligations|liabilities] are [generally|usually|normally] [not|never] [yours|your personal debts|the owners' debts].",
            "[Limited liability|The liability shield|The corporate veil] [does not|doesn't|will not] [protect|cover|shield] [personal guarantees|guarantees you sign|loans you guarantee], [fraud|wrongful trading|misconduct] or [your own|personal|individual] [torts|negligence|wrongs].",
            "[In|Under|Within] a [general partnership|partnership|simple partnership] [each|every|any] partner [is|can be|may be] [liable|responsible|answerable] for [all|the whole of the|the entire] [firm's|partnership|business] [debts|liabilities|obligations], [jointly|together|collectively].",
            "[Partners|Co-owners|Directors] [owe|have|bear] [duties|fiduciary duties|obligations] [of|including|such as] [good faith|loyalty|honesty]; [taking|withdrawing|moving] [funds|money|cash] [without|absent|lacking] [authority|approval|consent] [can|may|could] [breach|violate|infringe] them.",
            "[A|The] [small claims|money claim|fast-track] [procedure|process|track] [or|and|plus] a [statutory demand|formal demand|demand letter] [often|usually|frequently] [gets|makes|prompts] [debtors|clients|payers] to [pay|settle] [quickly|fast|without a hearing].",
        ],
        quotes=[
            "Where a qualifying debt is not paid by the due date, simple interest at {n} per cent above the reference rate shall run from the day after the due date.",
            "A member of a limited liability company is not liable, solely by reason of being a member, for a debt, obligation, or liability of the company.",
            "Every partner must account to the firm for any benefit derived by him without the consent of the other partners from any transaction concerning the partnership.",
        ],
        links=[("the late payment rules", "https://business.example.gov/late-commercial-payments"),
               ("the company registry", "https://companies.example.gov/register-{n}"),
               ("this comparison of business structures", "https://www.smallbiz.example.org/structures")],
    ),
]

# ==========================================================================================================
# Engine
# ==========================================================================================================

_TOK = re.compile(r"\[([^\[\]]*)\]|\{(\w+)\}")


def compile_t(s: str) -> tuple:
    """Template -> tuple of parts: str | (0, alternatives) | (1, slot). Alternatives: str or compiled."""
    parts: list = []
    pos = 0
    for m in _TOK.finditer(s):
        if m.start() > pos:
            parts.append(s[pos:m.start()])
        if m.group(1) is not None:
            alts = tuple(compile_t(a) if "{" in a else a for a in m.group(1).split("|"))
            parts.append((0, alts))
        else:
            parts.append((1, m.group(2)))
        pos = m.end()
    if pos < len(s):
        parts.append(s[pos:])
    return tuple(parts)


def _fill(parts: tuple, facts: dict) -> str:
    return "".join(p if p.__class__ is str else facts[p[1]] for p in parts)


def render(parts: tuple, facts: dict, rng: random.Random, old: list | None = None, p_change: float = 0.0):
    """Render a compiled template. With `old` picks, re-pick each choice group with probability p_change."""
    out = []
    picks = []
    k = 0
    rnd = rng.random
    for p in parts:
        if p.__class__ is str:
            out.append(p)
        elif p[0] == 0:
            alts = p[1]
            n = len(alts)
            if old is None:
                i = int(rnd() * n)
            else:
                i = old[k]
                if n > 1 and rnd() < p_change:
                    i = (i + 1 + int(rnd() * (n - 1))) % n
            k += 1
            picks.append(i)
            a = alts[i]
            out.append(a if a.__class__ is str else _fill(a, facts))
        else:
            out.append(facts[p[1]])
    s = "".join(out)
    if s and s[0].islower():
        s = s[0].upper() + s[1:]
    return s, picks


def _cp(pool):
    return [compile_t(t) for t in pool]


G_BACKGROUND = _cp(Q_BACKGROUND)
G_CLOSING = _cp(Q_CLOSING)
G_EDIT = _cp(Q_EDIT)
G_AOPEN = _cp(A_OPEN)
G_CAVEAT = _cp(A_CAVEAT)
G_PROC = _cp(A_PROCEDURE)
G_ACLOSE = _cp(A_CLOSE)
G_LIST_INTRO = _cp(LIST_INTRO)
G_ALIST_INTRO = _cp(A_LIST_INTRO)
G_H2Q = _cp(H2_Q)
G_H2A = _cp(H2_A)
G_QLINK = _cp([
    "I [read|found|looked at] {linktext} [but|yet|and still] [it did not help|it was unclear to me|I could not follow it].",
    "[According to|Going by|Based on] {linktext}, [this|it|what they did] [might not be|may not be|could be] [allowed|legal|lawful].",
])
G_ALINK = _cp([
    "[See|Have a look at|Read] {linktext} [for the details|for the exact wording|for more on this].",
    "[The relevant text|The wording|The rule] is [in|set out in|found in] {linktext}.",
])
G_QQUOTE_INTRO = _cp([
    "The [contract|document|paperwork] [says|reads|states], [word for word|verbatim|exactly]:",
    "[Here is|This is|Below is] the [relevant|key|important] [part|passage|wording]:",
    "[I found|I came across|There is] this [text|wording|passage] [online|in the rules|in my paperwork]:",
])
G_AQUOTE_INTRO = _cp([
    "[The|The relevant|The key] [provision|rule|text] [reads|says|provides]:",
    "[The statute|The law|The legislation] [says|states|provides], in [part|relevant part|short]:",
])
G_PRE_INTRO = _cp([
    "[The|Their] [last|latest|most recent] [message|email|record] [looked like this|read like this|was this]:",
    "[Here is|This is|Below is] [what|exactly what] [they sent|I received|the system shows]:",
])

for _t in TOPICS:
    for _k in ("titles", "facts", "asks", "rules"):
        _t["c_" + _k] = _cp(_t[_k])

_MOJI = {}
for _ch in "’‘“éèüöäçñ€£–—…ëáóúãøß":
    try:
        _MOJI[_ch] = _ch.encode("utf-8").decode("cp1252")
    except UnicodeDecodeError:
        pass
_MOJI_TABLE = str.maketrans(_MOJI)
_ASCII = str.maketrans("éèëáóúãøöüäçñÉØßí", "eeeaouaoouacnEOsi")
_SLUG_RE = re.compile(r"[^a-z0-9]+")


def _money(rng, cur, lo, hi):
    v = rng.randint(lo, hi)
    if cur == "₹":
        v *= 80
    if v >= 1000:
        v = v // 10 * 10
    return f"{cur}{v:,}"


def _date(rng, us):
    m = MONTHS[rng.randrange(12)]
    d = rng.randint(1, 28)
    y = rng.randint(2015, 2024)
    return f"{m} {d}, {y}" if us else f"{d} {m} {y}"


def gen_facts(rng: random.Random, topic: dict) -> dict:
    jname, jtag, cur, cities, us, miles = JURISDICTIONS[rng.randrange(len(JURISDICTIONS))]
    ch = rng.choice
    city = ch(cities)
    j2 = JURISDICTIONS[rng.randrange(len(JURISDICTIONS))]
    city2 = ch([c for c in j2[3] if c != city] or ["Lisbon"])
    n1, n2 = ch(FIRST_NAMES), ch(FIRST_NAMES)
    s1, s2 = ch(SURNAMES), ch(SURNAMES)
    limit = ch([20, 30, 40, 50, 60, 70])
    unit = "mph" if miles else "km/h"
    relative = ch(RELATIVES)
    f = {
        "jur": jname, "jurtag": jtag, "city": city, "city2": city2,
        "name": n1, "fullname": f"{n1} {s1}", "fullname2": f"{n2} {s2}",
        "email": f"{n1.translate(_ASCII).lower()}.{s1.translate(_ASCII).lower().replace(' ', '').replace(chr(39), '')}@example.com",
        "email2": f"{n2.translate(_ASCII).lower()}@{ch(COMPANY_WORDS).lower()}.example",
        "company": f"{ch(COMPANY_WORDS)} {ch(COMPANY_KINDS)}" + ch(["", " Ltd", " LLC", " GmbH", " Inc.", ""]),
        "amount": _money(rng, cur, 40, 3000), "amount2": _money(rng, cur, 1500, 60000),
        "amount3": _money(rng, cur, 150, 9000),
        "n": str(rng.randint(2, 9)), "n2": str(rng.randint(1, 9)), "n3": str(rng.randint(1, 5)),
        "days": str(ch([7, 10, 14, 21, 28, 30, 45, 60, 90])), "weeks": str(rng.randint(2, 12)),
        "months": str(rng.randint(2, 18)), "years": str(rng.randint(2, 15)), "pct": str(rng.randint(5, 60)),
        "date": _date(rng, us), "date2": _date(rng, us), "month": MONTHS[rng.randrange(12)],
        "weekday": ch(WEEKDAYS), "age": str(rng.randint(19, 78)), "age_child": str(rng.randint(2, 16)),
        "age_old": str(rng.randint(68, 97)), "occupation": ch(OCCUPATIONS), "relative": relative,
        "limit": f"{limit} {unit}", "speed": f"{limit + rng.randint(4, 30)} {unit}",
        "ref": f"{ch(['INV', 'REF', 'CASE', 'PCN', 'ORD', 'TKT', 'CLM'])}-{rng.randint(10000, 99999)}",
        "email_line": ch(EMAIL_LINES), "party": topic["party"],
        "country": ch(["Brazil", "Nigeria", "Vietnam", "Ukraine", "Mexico", "the Philippines", "Egypt",
                       "Colombia", "Pakistan", "Kenya", "Turkey", "Peru", "Portugal", "Poland"]),
    }
    f["relative_reason"] = ch([f"my {relative} was in hospital", "my flight was cancelled twice",
                               "I was waiting for a court date", "the consulate kept my passport",
                               "I broke my leg", "my employer delayed the paperwork"])
    for k, pool in topic["slots"].items():
        v = ch(pool)
        if "{" in v:
            v = _fill(compile_t(v), f)
        f[k] = v
        f[k + "_cap"] = v[0].upper() + v[1:]
    ltext, href = ch(topic["links"])
    f["linktext"] = _fill(compile_t(ltext), f)
    f["href"] = _fill(compile_t(href), f)
    return f


def new_sent(parts, facts, rng):
    text, picks = render(parts, facts, rng)
    return [parts, picks, text]


def length_target(rng):
    r = rng.random()
    if r < 0.12:
        return rng.randint(14, 46)
    if r < 0.235:
        return rng.randint(505, 580)
    return int(math.exp(rng.uniform(math.log(56), math.log(225))))


def _wc(sents):
    return sum(len(s[2].split()) for s in sents)


class _Pool:
    """Draws templates, avoiding repeats while the pool lasts (cheap: a few retries, no shuffle)."""
    __slots__ = ("items", "used", "rng")

    def __init__(self, items, rng):
        self.items = items
        self.rng = rng
        self.used = []

    def draw(self):
        items = self.items
        n = len(items)
        rnd = self.rng.random
        i = int(rnd() * n)
        if len(self.used) < n:
            tries = 0
            while i in self.used and tries < 6:
                i = int(rnd() * n)
                tries += 1
        self.used.append(i)
        return items[i]


def _paras(rng, sents, kind="p"):
    """Group sentences into paragraphs of 1-4."""
    blocks = []
    i = 0
    while i < len(sents):
        k = rng.choice((1, 2, 2, 3, 3, 4))
        blocks.append([kind, sents[i:i + k]])
        i += k
    return blocks


def _grow(rng, sections, expandable, target, facts):
    """sections: dict name -> [pool, list of sents]. Add from expandable sections until target words."""
    words = sum(_wc(v[1]) for v in sections.values())
    guard = 0
    while words < target and guard < 200:
        # prefer sections whose pool still has unused templates; repeat templates only when all are used up
        fresh = [x for x in expandable if len(sections[x][0].used) < len(sections[x][0].items)]
        cands = fresh or expandable
        name = cands[int(rng.random() * len(cands))]
        pool, lst = sections[name]
        s = new_sent(pool.draw(), facts, rng)
        lst.append(s)
        words += len(s[2].split())
        guard += 1
    return words


def build_question(rng, topic, facts, target):
    P = lambda items: _Pool(items, rng)  # noqa: E731
    sec = {
        "bg": [P(G_BACKGROUND), []], "facts": [P(topic["c_facts"]), []], "asks": [P(topic["c_asks"]), []],
        "close": [P(G_CLOSING), []], "edit": [P(G_EDIT), []],
    }
    short = target < 50
    sec["facts"][1].append(new_sent(sec["facts"][0].draw(), facts, rng))
    sec["asks"][1].append(new_sent(sec["asks"][0].draw(), facts, rng))
    if not short:
        if rng.random() < 0.6:
            sec["bg"][1].append(new_sent(sec["bg"][0].draw(), facts, rng))
        for _ in range(rng.choice((0, 1, 1, 2))):
            sec["asks"][1].append(new_sent(sec["asks"][0].draw(), facts, rng))
        if rng.random() < 0.55:
            sec["close"][1].append(new_sent(sec["close"][0].draw(), facts, rng))
        if target > 300 and rng.random() < 0.5:
            sec["edit"][1].append(new_sent(sec["edit"][0].draw(), facts, rng))
    extra_blocks = []
    words = sum(_wc(v[1]) for v in sec.values())
    if not short:
        if rng.random() < 0.14:  # quoted clause / statute in the question
            intro = new_sent(G_QQUOTE_INTRO[int(rng.random() * len(G_QQUOTE_INTRO))], facts, rng)
            q = topic["quotes"][int(rng.random() * len(topic["quotes"]))]
            qs = new_sent(compile_t(q), facts, rng)
            extra_blocks.append(("quote", [["p", [intro]], ["bq", [qs]]]))
            words += len(intro[2].split()) + len(qs[2].split())
        if rng.random() < 0.10:
            intro = new_sent(G_PRE_INTRO[int(rng.random() * len(G_PRE_INTRO))], facts, rng)
            code = _fill(compile_t(PRE_BLOCKS[int(rng.random() * len(PRE_BLOCKS))]), facts)
            extra_blocks.append(("pre", [["p", [intro]], ["pre", code]]))
            words += len(intro[2].split()) + len(code.split())
        if rng.random() < 0.06:
            ls = new_sent(G_QLINK[int(rng.random() * len(G_QLINK))], facts, rng)
            sec["bg"][1].append(ls)
            words += len(ls[2].split())
    if short:
        # keep it under 50 words: drop the ask if needed, never below one sentence
        if words > 49 and len(sec["asks"][1]) and len(sec["facts"][1]):
            sec["facts"][1].clear()
    else:
        _grow(rng, sec, ("facts", "facts", "facts", "bg", "bg"), target - (words - sum(_wc(v[1]) for v in sec.values())), facts)
    # assemble
    blocks = []
    long_doc = target > 420
    if sec["bg"][1]:
        if long_doc and rng.random() < 0.5:
            blocks.append(["h2", [new_sent(G_H2Q[0], facts, rng)]])
        blocks += _paras(rng, sec["bg"][1])
    if long_doc and rng.random() < 0.3:
        blocks.append(["h2", [new_sent(G_H2Q[2], facts, rng)]])
    blocks += _paras(rng, sec["facts"][1])
    for _, bl in extra_blocks:
        blocks += bl
    asks = sec["asks"][1]
    if long_doc and rng.random() < 0.5:
        blocks.append(["h2", [new_sent(G_H2Q[1], facts, rng)]])
    if len(asks) >= 2 and rng.random() < 0.35:
        blocks.append(["p", [new_sent(G_LIST_INTRO[int(rng.random() * len(G_LIST_INTRO))], facts, rng)]])
        blocks.append([rng.choice(("ul", "ol")), asks])
    else:
        blocks += _paras(rng, asks)
    if sec["edit"][1]:
        if rng.random() < 0.5:
            blocks.append(["hr", None])
        blocks += [["p", [s]] for s in sec["edit"][1]]
    if sec["close"][1]:
        blocks.append(["p", sec["close"][1]])
    return blocks


def build_answer(rng, topic, facts, target, main=True):
    P = lambda items: _Pool(items, rng)  # noqa: E731
    sec = {
        "open": [P(G_AOPEN), []], "rules": [P(topic["c_rules"]), []], "cav": [P(G_CAVEAT), []],
        "proc": [P(G_PROC), []], "close": [P(G_ACLOSE), []],
    }
    short = target < 50
    if rng.random() < (0.6 if main else 0.3):
        sec["open"][1].append(new_sent(sec["open"][0].draw(), facts, rng))
    sec["rules"][1].append(new_sent(sec["rules"][0].draw(), facts, rng))
    extra = []
    if not short:
        if rng.random() < 0.5:
            sec["cav"][1].append(new_sent(sec["cav"][0].draw(), facts, rng))
        if main and rng.random() < 0.4:
            sec["close"][1].append(new_sent(sec["close"][0].draw(), facts, rng))
        if rng.random() < (0.25 if main else 0.08):
            intro = new_sent(G_AQUOTE_INTRO[int(rng.random() * len(G_AQUOTE_INTRO))], facts, rng)
            q = topic["quotes"][int(rng.random() * len(topic["quotes"]))]
            extra.append(("quote", [["p", [intro]], ["bq", [new_sent(compile_t(q), facts, rng)]]]))
        if rng.random() < (0.3 if main else 0.1):
            extra.append(("link", [["p", [new_sent(G_ALINK[int(rng.random() * len(G_ALINK))], facts, rng)]]]))
        if main and target > 120 and rng.random() < 0.3:
            items = [new_sent(sec["proc"][0].draw(), facts, rng) for _ in range(rng.randint(3, 5))]
            intro = new_sent(G_ALIST_INTRO[int(rng.random() * len(G_ALIST_INTRO))], facts, rng)
            extra.append(("list", [["p", [intro]], [rng.choice(("ol", "ul")), items]]))
    words = sum(_wc(v[1]) for v in sec.values()) + sum(
        _wc(b[1]) for _, bl in extra for b in bl if b[0] != "pre")
    if short:
        if words > 49 and sec["open"][1]:
            sec["open"][1].clear()
    else:
        base = sum(_wc(v[1]) for v in sec.values())
        _grow(rng, sec, ("rules", "rules", "rules", "cav", "proc", "proc"), target - (words - base), facts)
    blocks = []
    long_doc = target > 420
    if sec["open"][1]:
        if long_doc and rng.random() < 0.5:
            blocks.append(["h2", [new_sent(G_H2A[0], facts, rng)]])
        blocks.append(["p", sec["open"][1]])
    if long_doc and rng.random() < 0.5:
        blocks.append(["h2", [new_sent(G_H2A[1 + int(rng.random() * 2)], facts, rng)]])
    rules = sec["rules"][1]
    cut = max(1, len(rules) // 2)
    blocks += _paras(rng, rules[:cut])
    for name, bl in extra:
        if name in ("quote", "link"):
            blocks += bl
    blocks += _paras(rng, rules[cut:])
    for name, bl in extra:
        if name == "list":
            blocks += bl
    if sec["proc"][1]:
        if long_doc and rng.random() < 0.5:
            blocks.append(["h2", [new_sent(G_H2A[2], facts, rng)]])
        blocks += _paras(rng, sec["proc"][1])
    if sec["cav"][1]:
        if long_doc and rng.random() < 0.4:
            blocks.append(["hr", None])
        blocks += _paras(rng, sec["cav"][1])
    if sec["close"][1]:
        blocks.append(["p", sec["close"][1]])
    return blocks


def _score(rng, p_neg):
    r = rng.random()
    if r < p_neg:
        return -rng.randint(1, 4)
    if r < p_neg + 0.03:
        return rng.randint(20, 160)
    return int(rng.expovariate(0.28))


def make_doc(rng: random.Random) -> dict:
    topic = TOPICS[int(rng.random() * len(TOPICS))]
    facts = gen_facts(rng, topic)
    tags = rng.sample(topic["tags"], rng.choice((1, 2, 2, 3, 3, 4)))
    if rng.random() < 0.6:
        tags.append(facts["jurtag"])
    doc = {
        "topic": topic, "facts": facts, "tags": sorted(set(tags)), "qscore": _score(rng, 0.10),
        "title": new_sent(topic["c_titles"][int(rng.random() * len(topic["c_titles"]))], facts, rng),
        "noise": _noise_flags(rng),
    }
    doc["q"] = build_question(rng, topic, facts, length_target(rng))
    answers = []
    if rng.random() >= 0.08:
        n = rng.choices((1, 2, 3, 4, 5), (48, 28, 13, 7, 4))[0]
        scores = [_score(rng, 0.08) for _ in range(n)]
        if rng.random() < 0.62:
            scores.sort(reverse=True)
        if n >= 2 and rng.random() < 0.15:  # a tie for first place
            top = max(scores)
            first = scores.index(top)
            other = (first + 1 + int(rng.random() * (n - 1))) % n
            scores[other] = top
        best = scores.index(max(scores))
        for i, s in enumerate(scores):
            if i == best:
                blocks = build_answer(rng, topic, facts, length_target(rng), True)
            else:
                blocks = build_answer(rng, topic, facts, int(math.exp(rng.uniform(math.log(12), math.log(75)))), False)
            answers.append({"blocks": blocks, "score": s})
        doc["best"] = best
    else:
        doc["best"] = -1
    doc["answers"] = answers
    return doc


def _noise_flags(rng):
    r = rng.random()
    return {
        "moji": r < 0.06,
        "odd": 0.06 <= r < 0.12,
        "ent": int(rng.random() * 4),   # 0 raw ', 1 &#39;, 2 &#8217;, 3 &quot;/&#39;
        "nbsp": rng.random() < 0.12,
        "junk": rng.random() < 0.02,
        "em": rng.random() < 0.5,
        "br": rng.random() < 0.08,
    }


# ---------------------------------------------------------------------------------------------------------- plain text

def block_text(b) -> str:
    kind, payload = b
    if kind == "hr":
        return ""
    if kind == "pre":
        return payload
    if kind in ("ul", "ol"):
        return "\n".join(s[2] for s in payload)
    return " ".join(s[2] for s in payload)


def blocks_text(blocks) -> str:
    return "\n\n".join(t for t in (block_text(b) for b in blocks) if t)


def blocks_words(blocks) -> int:
    n = 0
    for kind, payload in blocks:
        if kind == "pre":
            n += len(payload.split())
        elif kind != "hr":
            n += _wc(payload)
    return n


def doc_plain(doc) -> tuple[str, str, str]:
    """(title, question, best answer) as clean plain text (what a good HTML->text + ftfy step yields)."""
    ans = blocks_text(doc["answers"][doc["best"]]["blocks"]) if doc["best"] >= 0 else ""
    return doc["title"][2], blocks_text(doc["q"]), ans


# ---------------------------------------------------------------------------------------------------------- HTML

_WORD_RE = re.compile(r"[A-Za-z]{6,}")


def _html_sent(text: str, doc: dict, rng: random.Random) -> str:
    nz = doc["noise"]
    t = text
    if nz["odd"] and rng.random() < 0.4:
        t = t.replace("'", "’")
        if '"' in t:
            t = re.sub(r'"([^"]*)"', "“\\1”", t)
        r = rng.random()
        if r < 0.35 and "fi" in t:
            t = t.replace("fi", "ﬁ", 1)
        elif r < 0.6 and "fl" in t:
            t = t.replace("fl", "ﬂ", 1)
        sp = t.find(" ", int(rng.random() * len(t)))
        if sp > 0:
            t = t[:sp] + ("\u200b " if rng.random() < 0.5 else "\u00a0") + t[sp + 1:]
    if nz["moji"] and rng.random() < 0.6:
        t = t.replace("'", "’").translate(_MOJI_TABLE)
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    ent = nz["ent"]
    if ent and ("'" in t or '"' in t):
        if ent == 1:
            t = t.replace("'", "&#39;")
        elif ent == 2:
            t = t.replace("'", "&#8217;")
        else:
            t = t.replace('"', "&quot;").replace("'", "&#39;")
    if nz["nbsp"] and rng.random() < 0.3:
        sp = t.find(" ", int(rng.random() * len(t)))
        if sp > 0:
            t = t[:sp] + "&nbsp;" + t[sp + 1:]
    f = doc["facts"]
    lt = f["linktext"]
    if lt in t:
        t = t.replace(lt, f'<a href="{f["href"]}">{lt}</a>' if rng.random() < 0.9 else f"<strong>{lt}</strong>", 1)
    ref = f["ref"]
    if ref in t and rng.random() < 0.7:
        t = t.replace(ref, f"<code>{ref}</code>", 1)
    if nz["em"] and rng.random() < 0.12:
        ms = list(_WORD_RE.finditer(t))
        if ms:
            m = ms[int(rng.random() * len(ms))]
            tag = "em" if rng.random() < 0.6 else "strong"
            # do not wrap inside a tag we just inserted
            if "<" not in t[max(0, m.start() - 40):m.start()] or ">" in t[max(0, m.start() - 40):m.start()]:
                t = f"{t[:m.start()]}<{tag}>{m.group(0)}</{tag}>{t[m.end():]}"
    return t


_JUNK = [
    '<script type="text/javascript">var _q = window._q || []; _q.push(["track", "view"]);</script>',
    "<style>.post-text p { margin-bottom: 1em; color: #333 }</style>",
    "<script>document.write('<img src=\"https://tracker.example/p.gif\">');</script>",
]


def blocks_html(blocks, doc, rng, junk=False) -> str:
    out = []
    for kind, payload in blocks:
        if kind == "p":
            sep = "<br>\n" if doc["noise"]["br"] and len(payload) > 1 and rng.random() < 0.5 else " "
            out.append("<p>" + sep.join(_html_sent(s[2], doc, rng) for s in payload) + "</p>")
        elif kind in ("ul", "ol"):
            out.append(f"<{kind}>\n" + "".join(f"<li>{_html_sent(s[2], doc, rng)}</li>\n" for s in payload) + f"</{kind}>")
        elif kind == "bq":
            out.append("<blockquote>\n  <p>" + " ".join(_html_sent(s[2], doc, rng) for s in payload) + "</p>\n</blockquote>")
        elif kind == "pre":
            code = payload.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            out.append(f"<pre><code>{code}\n</code></pre>")
        elif kind == "h2":
            out.append("<h2>" + _html_sent(payload[0][2], doc, rng) + "</h2>")
        elif kind == "hr":
            out.append("<hr>")
    if junk:
        out.insert(int(rng.random() * (len(out) + 1)), _JUNK[int(rng.random() * len(_JUNK))])
    return "\n\n".join(out) + "\n"


def _title_text(doc, rng):
    t = doc["title"][2]
    nz = doc["noise"]
    if nz["moji"] and rng.random() < 0.4:
        t = t.replace("'", "’").translate(_MOJI_TABLE)
    elif nz["odd"] and rng.random() < 0.4:
        t = t.replace("'", "’")
    return t


def slugify(title: str) -> str:
    s = _SLUG_RE.sub("-", title.translate(_ASCII).lower()).strip("-")
    if len(s) > 80:
        s = s[:80].rsplit("-", 1)[0]
    return s or "question"


# ---------------------------------------------------------------------------------------------------------- copies

def shingles(text: str, k: int = 5) -> set:
    w = text.lower().split()
    return {" ".join(w[i:i + k]) for i in range(max(1, len(w) - k + 1))}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    u = len(sa | sb)
    return len(sa & sb) / u if u else 1.0


def doc_joined(doc) -> str:
    return "\n".join(doc_plain(doc))


def passes_default_filters(doc, lo=55, hi=470) -> bool:
    """Margins inside 50-500 so small HTML->text differences (list markers, '> ') cannot flip the verdict."""
    if doc["best"] < 0 or doc["qscore"] < 0:
        return False
    best = doc["answers"][doc["best"]]
    if best["score"] < 0:
        return False
    qw = blocks_words(doc["q"])
    aw = blocks_words(best["blocks"])
    return lo <= qw <= hi and lo <= aw <= hi


def _copy_blocks(blocks):
    return [[k, p if k in ("pre", "hr") else [list(s) for s in p]] for k, p in blocks]


def _copy_doc(doc):
    d = dict(doc)
    d["title"] = list(doc["title"])
    d["q"] = _copy_blocks(doc["q"])
    d["answers"] = [{"blocks": _copy_blocks(a["blocks"]), "score": a["score"]} for a in doc["answers"]]
    return d


def _doc_sents(doc, best_only=True):
    """Mutable sentence lists of question and (best) answer, excluding code blocks."""
    out = []
    blocks_sets = [doc["q"]]
    if best_only:
        blocks_sets.append(doc["answers"][doc["best"]]["blocks"])
    else:
        blocks_sets += [a["blocks"] for a in doc["answers"]]
    for blocks in blocks_sets:
        for kind, payload in blocks:
            if kind not in ("pre", "hr"):
                out.extend(payload)
    return out


_INSERTS = ["really", "actually", "also", "just", "still", "already", "now", "quite", "certainly", "basically",
            "honestly", "clearly", "perhaps", "indeed"]
_SWAPS = {"the": "this", "a": "one", "and": "plus", "but": "yet", "is": "was", "my": "our", "to": "towards",
          "for": "regarding", "with": "alongside", "about": "around", "they": "those people", "have": "had",
          "will": "would", "can": "could", "not": "never", "very": "really", "if": "when"}


def _typo(w, rng):
    if len(w) >= 4:
        i = 1 + int(rng.random() * (len(w) - 3))
        r = rng.random()
        if r < 0.5:
            return w[:i] + w[i + 1] + w[i] + w[i + 2:]
        if r < 0.8:
            return w[:i] + w[i + 1:]
        return w[:i] + w[i] + w[i:]
    return w + w[-1]


def near_copy(doc, rng) -> tuple[dict, float] | None:
    base = doc_joined(doc)
    total = len(base.split())
    frac = 0.02 + rng.random() * 0.025
    k = max(2, round(total * frac))
    for _attempt in range(5):
        d = _copy_doc(doc)
        sents = _doc_sents(d)
        edits = 0
        while edits < k:
            s = sents[int(rng.random() * len(sents))]
            words = s[2].split()
            if len(words) < 4:
                continue
            c = min(k - edits, rng.choice((1, 2, 2, 3, 3, 4)), len(words) - 1)
            pos = int(rng.random() * (len(words) - c + 1))
            j = pos
            for _ in range(c):
                op = rng.random()
                w = words[j] if j < len(words) else words[-1]
                if op < 0.3:
                    words[j] = _typo(w, rng)
                    j += 1
                elif op < 0.55 and w.lower() in _SWAPS:
                    words[j] = _SWAPS[w.lower()]
                    j += 1
                elif op < 0.75:
                    words.insert(j, _INSERTS[int(rng.random() * len(_INSERTS))])
                    j += 2
                elif len(words) > 4:
                    del words[min(j, len(words) - 1)]
                else:
                    words[j] = _typo(w, rng)
                    j += 1
                edits += 1
                if j >= len(words):
                    break
            s[2] = " ".join(words)
        if rng.random() < 0.1:  # occasionally a typo in the title too
            tw = d["title"][2].split()
            if len(tw) > 3:
                i = int(rng.random() * len(tw))
                tw[i] = _typo(tw[i], rng)
                d["title"][2] = " ".join(tw)
        j = jaccard(base, doc_joined(d))
        if j >= 0.85 and passes_default_filters(d):
            d["edit_frac"] = edits / max(1, total)
            return d, j
        k = max(1, int(k * 0.7))
    return None


def paraphrase_copy(doc, rng) -> tuple[dict, float] | None:
    """Re-pick choice groups with the smallest probability (from a schedule) that takes the 5-shingle Jaccard
    below PARA_MAX_JACCARD: as little rewording as needed, so the embedding stays close."""
    base = doc_joined(doc)
    for p_change in (0.1, 0.13, 0.16, 0.19, 0.22, 0.25, 0.28, 0.32, 0.36, 0.42, 0.5, 0.65, 0.85):
        d = _copy_doc(doc)
        f = d["facts"]
        t = d["title"]
        t[2], t[1] = render(t[0], f, rng, t[1], p_change * 0.5)
        for a in [d["q"]] + [a["blocks"] for a in d["answers"]]:
            for kind, payload in a:
                if kind in ("pre", "hr"):
                    continue
                for s in payload:
                    s[2], s[1] = render(s[0], f, rng, s[1], p_change)
                if kind == "p" and len(payload) >= 3 and rng.random() < 0.35:
                    i = 1 + int(rng.random() * (len(payload) - 2))
                    payload[i], payload[i + 1] = payload[i + 1], payload[i]
        j = jaccard(base, doc_joined(d))
        if j < PARA_MAX_JACCARD:
            if passes_default_filters(d):
                return d, j
            return None
    return None


PARA_MAX_JACCARD = 0.47


# ---------------------------------------------------------------------------------------------------------- records

def to_record(doc, qid, answer_ids, rng, lic):
    title = _title_text(doc, rng)
    return {
        "question_id": qid,
        "tags": doc["tags"],
        "score": doc["qscore"],
        "license": lic,
        "link": f"https://law.stackexchange.com/questions/{qid}/{slugify(doc['title'][2])}",
        "question_title": title,
        "question_body": blocks_html(doc["q"], doc, rng, doc["noise"]["junk"]),
        "answers": [{"answer_id": aid, "body": blocks_html(a["blocks"], doc, rng), "score": a["score"]}
                    for aid, a in zip(answer_ids, doc["answers"])],
    }


def exact_copy_record(orig_rec, qid, answer_ids, rng, lic):
    def ws(h):
        r = rng.random()
        if r < 0.3:
            return h.replace("\n\n", "\n")
        if r < 0.6:
            return h.rstrip("\n") + "\n\n"
        return h
    return {
        "question_id": qid,
        "tags": orig_rec["tags"],
        "score": orig_rec["score"],
        "license": lic,
        "link": f"https://law.stackexchange.com/questions/{qid}/{orig_rec['link'].rsplit('/', 1)[1]}",
        "question_title": orig_rec["question_title"],
        "question_body": ws(orig_rec["question_body"]),
        "answers": [{"answer_id": aid, "body": ws(a["body"]), "score": a["score"]}
                    for aid, a in zip(answer_ids, orig_rec["answers"])],
    }


COPY_RATE = 0.09        # ~3% exact, ~3% near, ~3% paraphrase (a few planned copies fail their checks)
RESERVOIR = 3000        # eligible originals a copy may be drawn from (random replacement when full)
CHUNK = 4096            # questions per independently seeded chunk; output does not depend on --workers
QID_BASE = 100000       # question ids: QID_BASE + chunk * CHUNK * 3 + ... (6 digits up to ~300k questions)
AID_BASE = 1000000      # answer ids: AID_BASE + chunk * CHUNK * 12 + ...


def _chunk(args) -> tuple[bytes, bytes]:
    """Generate chunk `c` (questions [c*CHUNK, c*CHUNK+n)): (records joined by ',\n', truth lines)."""
    seed, c, n, n_v3, chunk = args
    rng = random.Random(seed * 1_000_003 + c)
    qid = QID_BASE + c * chunk * 3
    aid = AID_BASE + c * chunk * 12
    pool: list = []       # eligible originals: (qid, doc, record)
    copy_p = COPY_RATE / 0.97  # the first rows of a chunk cannot be copies; compensate a little
    out = []
    truth = []

    def new_aids(k):
        nonlocal aid
        ids = []
        for _ in range(k):
            aid += 1 + int(rng.random() * 2)
            ids.append(aid)
        return ids

    for i in range(n):
        qid += 1 + int(rng.random() * 2)
        lic = "CC BY-SA 3.0" if c * chunk + i < n_v3 else "CC BY-SA 4.0"  # older questions: 3.0
        kind = None
        if len(pool) >= 20 and rng.random() < copy_p:
            kind = ("exact", "near", "paraphrase")[int(rng.random() * 3)]
        rec = None
        if kind is not None:
            j = int(rng.random() * len(pool))
            oqid, odoc, orec = pool[j]
            if kind == "exact":
                rec = exact_copy_record(orec, qid, new_aids(len(orec["answers"])), rng, lic)
            else:
                res = near_copy(odoc, rng) if kind == "near" else paraphrase_copy(odoc, rng)
                if res is not None:
                    cdoc = res[0]
                    if rng.random() < 0.5:
                        cdoc["qscore"] = rng.randint(0, odoc["qscore"])
                    rec = to_record(cdoc, qid, new_aids(len(cdoc["answers"])), rng, lic)
            if rec is not None:
                pool[j] = pool[-1]
                pool.pop()
                truth.append(orjson.dumps({"question_id": qid, "duplicates": oqid, "kind": kind}) + b"\n")
        if rec is None:
            doc = make_doc(rng)
            rec = to_record(doc, qid, new_aids(len(doc["answers"])), rng, lic)
            if passes_default_filters(doc):
                if len(pool) < RESERVOIR:
                    pool.append((qid, doc, rec))
                else:
                    pool[int(rng.random() * RESERVOIR)] = (qid, doc, rec)
        out.append(orjson.dumps(rec))
    return b",\n".join(out), b"".join(truth)


def generate(n_questions: int, seed: int, fh, truth_fh, workers: int = 1, chunk: int = CHUNK) -> None:
    """Stream a JSON array of n_questions records to fh and the planted-duplicate truth lines to truth_fh.
    The corpus is made of independently seeded chunks of CHUNK questions (a copy and its original are in the
    same chunk), so the bytes are the same for any number of workers."""
    n_v3 = int(n_questions * 0.35)  # the oldest ~35% of questions are under CC BY-SA 3.0
    jobs = [(seed, c, min(chunk, n_questions - c * chunk), n_v3, chunk)
            for c in range((n_questions + chunk - 1) // chunk)]
    fh.write(b"[\n")
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        pool = ctx.Pool(min(workers, len(jobs)))
        results = pool.imap(_chunk, jobs)
    else:
        pool = None
        results = map(_chunk, jobs)
    try:
        for k, (recs, truth) in enumerate(results):
            if k:
                fh.write(b",\n")
            fh.write(recs)
            truth_fh.write(truth)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    fh.write(b"\n]\n" if jobs else b"]\n")


def _atomic_open(path: str):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=d)
    return os.fdopen(fd, "wb", buffering=1 << 20), tmp


def default_truth_path(out: str) -> str:
    base, _ext = os.path.splitext(out)
    return base + "-duplicates.jsonl"


# ==========================================================================================================
# The dump-shaped twin: a generated Stack Exchange site (Posts.xml + PostLinks.xml, optionally packed as .7z)
# ==========================================================================================================

DUMP_SAMPLE_COMMAND = ("--dump data/sample/law.stackexchange.com --dump-7z data/sample/law.stackexchange.com.7z "
                       "--questions 300 --seed 0")
DUMP_EPOCH = 1432670400  # 2015-05-26T20:00:00Z, when the generated site opens
DUMP_LICENSES = ((0.15, "CC BY-SA 2.5"), (0.50, "CC BY-SA 3.0"), (float("inf"), "CC BY-SA 4.0"))  # by age of the post
DUMP_MTIME = (2024, 4, 1, 0, 0, 0)  # the .7z members' fixed timestamp (the archive bytes do not depend on now)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml_attr(value) -> str:
    """An attribute value escaped as the dumps write them (newlines as &#xA;); XML-invalid characters dropped."""
    s = _XML_INVALID.sub("", str(value))
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
            .replace("\n", "&#xA;").replace("\r", "&#xD;").replace("\t", "&#x9;"))


def _xml_row(attrs: dict) -> bytes:
    return ("  <row " + " ".join(f'{k}="{_xml_attr(v)}"' for k, v in attrs.items() if v is not None)
            + " />\r\n").encode("utf-8")


def _dump_tags(tags, fmt: str) -> str:
    return "".join(f"<{t}>" for t in tags) if fmt == "angle" else "|" + "|".join(tags) + "|"


def _dump_questions(rng: random.Random, n: int) -> tuple[list[dict], list[tuple]]:
    """n generated questions (dicts with doc, answers, time), and the duplicate links planted among them:
    (copy index, original index, kind); a copy is an exact, near or paraphrased re-ask of an earlier question,
    or ('unrelated') a question the community closed as a duplicate whatever its wording."""
    questions, links, pool = [], [], []
    for i in range(n):
        doc, kind = None, None
        if len(pool) >= 10 and rng.random() < 0.08:
            j = pool.pop(int(rng.random() * len(pool)))
            kind = ("exact", "near", "paraphrase", "unrelated")[int(rng.random() * 4)]
            if kind == "exact":
                doc = _copy_doc(questions[j]["doc"])
            elif kind in ("near", "paraphrase"):
                res = (near_copy if kind == "near" else paraphrase_copy)(questions[j]["doc"], rng)
                doc = res[0] if res else None
            if doc is not None or kind == "unrelated":
                links.append((i, j, kind))
        if doc is None:
            doc = make_doc(rng)
            if kind is None and passes_default_filters(doc):
                pool.append(i)
        questions.append({"doc": doc, "time": float(i)})
    return questions, links


def _dump_posts(rng: random.Random, n: int, tag_format: str) -> tuple[list[dict], list[dict]]:
    """Posts (dicts of attributes, Ids assigned in time order) and PostLinks rows of a generated site."""
    questions, dup_links = _dump_questions(rng, n)
    posts: list[dict] = []
    for q in questions:
        doc = q["doc"]
        q["row"] = {"PostTypeId": 1, "AcceptedAnswerId": None, "Score": doc["qscore"],
                    "ViewCount": 20 + int(rng.expovariate(0.004)),
                    "Body": blocks_html(doc["q"], doc, rng, doc["noise"]["junk"]), "Title": _title_text(doc, rng),
                    "Tags": _dump_tags(doc["tags"], tag_format), "AnswerCount": len(doc["answers"]),
                    "CommentCount": int(rng.random() * 6), "_time": q["time"]}
        posts.append(q["row"])
        answers = []
        for a in doc["answers"]:
            answers.append({"PostTypeId": 2, "ParentId": q["row"], "Score": a["score"],
                            "Body": blocks_html(a["blocks"], doc, rng), "CommentCount": int(rng.random() * 4),
                            "_time": q["time"] + 0.01 + rng.expovariate(0.4)})
        posts.extend(answers)
        if answers and rng.random() < 0.55:  # accepted: usually the best-scored answer, sometimes another one
            r = rng.random()
            pick = answers[doc["best"]] if r < 0.7 else answers[int(rng.random() * len(answers))]
            q["row"]["AcceptedAnswerId"] = pick if r < 0.97 else "deleted"
    _plant_skips(rng, posts, questions)
    posts.sort(key=lambda p: p["_time"])
    next_id = 0
    for p in posts:
        next_id += 1 + (1 if rng.random() < 0.12 else 0)  # gaps: deleted posts
        p["Id"] = next_id
    links = [{"PostId": questions[c]["row"]["Id"], "RelatedPostId": questions[o]["row"]["Id"], "LinkTypeId": 3}
             for c, o, _kind in dup_links]
    for _ in range(max(1, n // 25)):  # "linked" (LinkTypeId 1) between random questions: not families
        a, b = rng.sample(range(len(questions)), 2) if len(questions) > 1 else (0, 0)
        links.append({"PostId": questions[a]["row"]["Id"], "RelatedPostId": questions[b]["row"]["Id"],
                      "LinkTypeId": 1})
    for k, p in enumerate(q for q in posts if q.get("_deleted_parent")):
        p["ParentId"] = next_id + 100 + k  # an Id no post has: the question was deleted
    links.append({"PostId": questions[0]["row"]["Id"], "RelatedPostId": next_id + 7, "LinkTypeId": 3})  # deleted
    return posts, sorted(links, key=lambda link: (link["PostId"], link["RelatedPostId"]))


def _plant_skips(rng: random.Random, posts: list[dict], questions: list[dict]) -> None:
    """Rows the converter must count as skips: tag wikis, an empty question, an empty answer, orphan answers."""
    n = len(questions)
    for k in range(max(1, n // 60)):
        t = rng.random() * n
        posts.append({"PostTypeId": 4, "Score": 0, "Body": "<p>For questions about a generated tag.</p>",
                      "_time": t})
        posts.append({"PostTypeId": 5, "Score": 0, "Body": "", "_time": t + 0.001})
    posts.append({"PostTypeId": 1, "Score": 0, "Body": "", "Title": "A question whose body was removed",
                  "Tags": "|meta|", "_time": n * 0.5 + 0.3})
    posts.append({"PostTypeId": 2, "ParentId": questions[n // 3]["row"], "Score": 0, "Body": "",
                  "_time": n / 3 + 0.4})
    for k in range(max(1, n // 100)):  # answers to questions deleted since
        posts.append({"PostTypeId": 2, "ParentId": None, "_deleted_parent": True, "Score": 1,
                      "Body": "<p>An answer to a question that is gone.</p>", "_time": rng.random() * n})


def _serialize_posts(posts: list[dict], n: int) -> bytes:
    out = [b'<?xml version="1.0" encoding="utf-8"?>\r\n<posts>\r\n']
    for p in posts:
        attrs = {"Id": p["Id"]}
        for key in ("PostTypeId", "AcceptedAnswerId", "ParentId"):
            value = p.get(key)
            if isinstance(value, dict):
                value = value["Id"]
            elif value == "deleted":
                value = p["Id"] + 10 ** 6
            attrs[key] = value
        seconds = DUMP_EPOCH + int(p["_time"] * 86400 * 3)
        attrs["CreationDate"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{p['Id'] * 37 % 1000:03d}"
        for key in ("Score", "ViewCount", "Body", "Title", "Tags", "AnswerCount", "CommentCount"):
            attrs[key] = p.get(key)
        age = p["_time"] / max(1, n)
        attrs["ContentLicense"] = next(lic for edge, lic in DUMP_LICENSES if age < edge)
        out.append(_xml_row(attrs))
    out.append(b"</posts>\r\n")
    return b"".join(out)


def _serialize_links(links: list[dict]) -> bytes:
    out = [b'<?xml version="1.0" encoding="utf-8"?>\r\n<postlinks>\r\n']
    for k, link in enumerate(links, 1):
        out.append(_xml_row({"Id": k, "CreationDate": "2024-01-01T00:00:00.000", **link}))
    out.append(b"</postlinks>\r\n")
    return b"".join(out)


def generate_dump(n_questions: int, seed: int, tag_format: str = "pipe") -> dict[str, bytes]:
    """A generated site's dump files {"Posts.xml": bytes, "PostLinks.xml": bytes}, byte-identical per
    (n_questions, seed, tag_format). Tags as '|a|b|' (current dumps, tag_format "pipe") or '<a><b>' ("angle")."""
    rng = random.Random(seed * 1_000_003 + 977)
    posts, links = _dump_posts(rng, n_questions, tag_format)
    return {"Posts.xml": _serialize_posts(posts, n_questions), "PostLinks.xml": _serialize_links(links)}


def write_dump(files: dict[str, bytes], folder: str | None = None, archive: str | None = None) -> None:
    """Write the dump files into `folder` and/or pack them as the .7z `archive` (LZMA2, fixed timestamps)."""
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            fh, tmp = _atomic_open(os.path.join(folder, name))
            with fh:
                fh.write(data)
            os.chmod(tmp, 0o644)
            os.replace(tmp, os.path.join(folder, name))
    if archive:
        import io

        import py7zr
        from py7zr.helpers import ArchiveTimestamp

        fh, tmp = _atomic_open(archive)
        fixed = ArchiveTimestamp.from_datetime(calendar.timegm(DUMP_MTIME + (0, 0, 0)))
        try:
            with fh, py7zr.SevenZipFile(fh, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 6}]) as z:
                for name in sorted(files):
                    z.writef(io.BytesIO(files[name]), name)
                    info = z.header.files_info.files[-1]  # py7zr stamps "now": pin the times
                    for key in ("creationtime", "lastaccesstime"):
                        info.pop(key, None)
                    info["lastwritetime"] = fixed
            os.chmod(tmp, 0o644)
            os.replace(tmp, archive)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=1200, help="number of questions (planted copies included)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="output JSON file (the committed sample is "
                    "data/sample/law-stackexchange-questions-answers.json: --questions 1200 --seed 0)")
    ap.add_argument("--dump", metavar="DIR", default=None,
                    help="instead of the JSON file, write a generated Stack Exchange site's dump (Posts.xml, "
                         "PostLinks.xml) into DIR (the committed twin: " + DUMP_SAMPLE_COMMAND + ")")
    ap.add_argument("--dump-7z", metavar="FILE", default=None, help="also (or only) pack the dump as this .7z")
    ap.add_argument("--tag-format", choices=("pipe", "angle"), default="pipe",
                    help="dump tags as |a|b| (current dumps) or <a><b> (older dumps)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes (output is byte-identical for any value; default: all cores)")
    ap.add_argument("--chunk", type=int, default=CHUNK, help=argparse.SUPPRESS)  # part of the output identity
    ap.add_argument("--truth", default=None, help="ground truth of planted duplicates "
                                                  "(default: <out stem>-duplicates.jsonl)")
    args = ap.parse_args(argv)
    if args.questions < 0:
        ap.error("--questions must be >= 0")
    if args.dump or args.dump_7z:
        write_dump(generate_dump(args.questions, args.seed, args.tag_format), args.dump, args.dump_7z)
        return 0
    if not args.out:
        ap.error("give --out FILE (the JSON sample) or --dump DIR / --dump-7z FILE (the dump twin)")
    truth = args.truth or default_truth_path(args.out)
    fh, tmp = _atomic_open(args.out)
    tfh, ttmp = _atomic_open(truth)
    try:
        with fh, tfh:
            generate(args.questions, args.seed, fh, tfh, max(1, args.workers), max(100, args.chunk))
        for p in (tmp, ttmp):
            os.chmod(p, 0o644)
        os.replace(tmp, args.out)
        os.replace(ttmp, truth)
    except BaseException:
        for p in (tmp, ttmp):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
