//! The peer's one aggregate, written as the cqrs-es documentation shows:
//! `handle` decides and writes events to the sink, `apply` folds them.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope, View};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
pub enum AccountCommand {
    Open { owner: String },
    Deposit { amount: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Opened { owner: String },
    Deposited { amount: i64, balance: i64 },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> String {
        match self {
            AccountEvent::Opened { .. } => "Opened",
            AccountEvent::Deposited { .. } => "Deposited",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error("the account is already open")]
    AlreadyOpen,
    #[error("the account is not open")]
    NotOpen,
    #[error("an amount must be positive")]
    NotPositive,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Account {
    open: bool,
    balance: i64,
}

impl Aggregate for Account {
    const TYPE: &'static str = "Account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;
    type Services = ();

    async fn handle(
        &mut self,
        command: AccountCommand,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AccountError> {
        match command {
            AccountCommand::Open { owner } => {
                if self.open {
                    return Err(AccountError::AlreadyOpen);
                }
                sink.write(AccountEvent::Opened { owner }, self).await;
            }
            AccountCommand::Deposit { amount } => {
                if !self.open {
                    return Err(AccountError::NotOpen);
                }
                if amount <= 0 {
                    return Err(AccountError::NotPositive);
                }
                let balance = self.balance + amount;
                sink.write(AccountEvent::Deposited { amount, balance }, self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: AccountEvent) {
        match event {
            AccountEvent::Opened { .. } => self.open = true,
            AccountEvent::Deposited { balance, .. } => self.balance = balance,
        }
    }
}

/// The `GenericQuery` view: the account as a client reads it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AccountView {
    owner: Option<String>,
    balance: i64,
    deposits: u64,
}

impl View<Account> for AccountView {
    fn update(&mut self, event: &EventEnvelope<Account>) {
        match &event.payload {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { balance, .. } => {
                self.balance = *balance;
                self.deposits += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    type AccountTest = TestFramework<Account>;

    #[test]
    fn opening_a_new_account() {
        AccountTest::with(())
            .given_no_previous_events()
            .when(AccountCommand::Open { owner: "a".into() })
            .then_expect_events(vec![AccountEvent::Opened { owner: "a".into() }]);
    }

    #[test]
    fn an_account_opens_once() {
        AccountTest::with(())
            .given(vec![AccountEvent::Opened { owner: "a".into() }])
            .when(AccountCommand::Open { owner: "b".into() })
            .then_expect_error(AccountError::AlreadyOpen);
    }

    #[test]
    fn a_deposit_carries_the_new_balance() {
        AccountTest::with(())
            .given(vec![
                AccountEvent::Opened { owner: "a".into() },
                AccountEvent::Deposited {
                    amount: 5,
                    balance: 5,
                },
            ])
            .when(AccountCommand::Deposit { amount: 3 })
            .then_expect_events(vec![AccountEvent::Deposited {
                amount: 3,
                balance: 8,
            }]);
    }

    #[test]
    fn deposits_need_an_open_account_and_a_positive_amount() {
        AccountTest::with(())
            .given_no_previous_events()
            .when(AccountCommand::Deposit { amount: 3 })
            .then_expect_error(AccountError::NotOpen);
        AccountTest::with(())
            .given(vec![AccountEvent::Opened { owner: "a".into() }])
            .when(AccountCommand::Deposit { amount: 0 })
            .then_expect_error(AccountError::NotPositive);
    }
}
